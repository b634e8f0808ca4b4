// Typed loader for the C++ addon (native/). The addon is the only code that
// makes syscalls; everything here is a thin, typed view of what it exports.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** One CPUID entry as KVM_GET_SUPPORTED_CPUID / KVM_SET_CPUID2 use it. */
export interface CpuidEntry {
  function: number;
  index: number;
  flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

export interface Segment {
  base: bigint;
  limit: number;
  selector: number;
  type: number;
  present: number;
  dpl: number;
  db: number;
  s: number;
  l: number;
  g: number;
  avl: number;
}

export interface DescriptorTable {
  base: bigint;
  limit: number;
}

/** struct kvm_regs; every register is a bigint so 64-bit values survive. */
export interface Regs {
  rax: bigint; rbx: bigint; rcx: bigint; rdx: bigint;
  rsi: bigint; rdi: bigint; rsp: bigint; rbp: bigint;
  r8: bigint; r9: bigint; r10: bigint; r11: bigint;
  r12: bigint; r13: bigint; r14: bigint; r15: bigint;
  rip: bigint; rflags: bigint;
}

/** struct kvm_sregs (the interrupt bitmap is left out: it is always zero here). */
export interface Sregs {
  cs: Segment; ds: Segment; es: Segment; fs: Segment; gs: Segment; ss: Segment;
  tr: Segment; ldt: Segment;
  gdt: DescriptorTable; idt: DescriptorTable;
  cr0: bigint; cr2: bigint; cr3: bigint; cr4: bigint; cr8: bigint;
  efer: bigint; apic_base: bigint;
}

export interface Msr {
  index: number;
  data: bigint;
}

/** Why a vCPU thread stopped running KVM_RUN. */
export type StopReason =
  | 'stopped'        // Vm.stop() was called
  | 'shutdown'       // KVM_EXIT_SHUTDOWN: triple fault
  | 'reset'          // KVM_EXIT_SYSTEM_EVENT reset
  | 'poweroff'       // KVM_EXIT_SYSTEM_EVENT shutdown
  | 'internal-error' // KVM_EXIT_INTERNAL_ERROR (e.g. emulation failure)
  | 'fail-entry'     // KVM_EXIT_FAIL_ENTRY
  | 'unhandled'      // any other exit reason
  | 'error';         // KVM_RUN itself failed (errno in detail)

/**
 * Called on the JS thread for every port or MMIO access that needs emulation,
 * while the vCPU thread waits. For reads return the value (zero-extended to
 * `size` bytes; higher bytes are ignored, undefined reads as 0); for writes
 * `value` holds the data and the return is ignored. String port I/O (rep
 * ins/outs) calls it once per element, in order. If it throws, or answers a
 * read with anything but a BigInt or undefined, that vCPU stops with 'error'
 * and the message in `detail`: a guest cannot crash the host through it.
 */
export type ExitHandler = (
  vcpu: number,
  kind: 'pio' | 'mmio',
  addr: number,
  size: number,
  isWrite: boolean,
  value: bigint,
) => bigint | void;

/**
 * Called on the JS thread once per vCPU per run() when its thread leaves
 * KVM_RUN. `detail` is '' for 'stopped'; for failures it names the cause and ends
 * with the guest RIP (", rip 0x..."). After 'stopped' the vCPU's state is
 * consistent (no port or MMIO access half done): it can be saved for a snapshot.
 */
export type StopHandler = (vcpu: number, reason: StopReason, detail: string) => void;

/**
 * State accessors work before run(), inside onExit for this vCPU, and once it
 * is stopping or stopped; while it runs guest code they throw EBUSY (the ioctl
 * would wait for the guest to exit). Inside onExit, and while stopping, the
 * access in flight is not complete yet (RIP may still point at it, a read's
 * value is not in its register): save state for a snapshot only after 'stopped'.
 */
export interface NativeVcpu {
  readonly id: number;
  getRegs(): Regs;
  setRegs(regs: Regs): void;
  getSregs(): Sregs;
  setSregs(sregs: Sregs): void;
  /** KVM_SET_FPU with the default control words (FCW 0x37f, MXCSR 0x1f80). */
  resetFpu(): void;
  setCpuid(entries: CpuidEntry[]): void;
  getMsrs(indices: number[]): Msr[];
  setMsrs(msrs: Msr[]): void;
  /** Raw struct kvm_lapic_state (1024 bytes). */
  getLapic(): Buffer;
  setLapic(state: Buffer): void;
  /** KVM_GET_MP_STATE: 0 runnable, 1 uninitialized (AP waiting for INIT/SIPI), 3 halted, ... */
  getMpState(): number;
  /** KVM_SET_MP_STATE, same values as getMpState(). */
  setMpState(state: number): void;
  // Snapshot state: raw kernel structs (x86-64 layout of Linux's <linux/kvm.h>),
  // restored as they were saved. A Buffer of the wrong size throws a KvmError
  // (EINVAL) naming the field and the expected size; anything else a TypeError.
  /** Raw struct kvm_vcpu_events (64 bytes): pending exception, interrupt, NMI, SMI, interrupt shadow. */
  getVcpuEvents(): Buffer;
  setVcpuEvents(events: Buffer): void;
  /** Raw struct kvm_fpu (416 bytes): x87, SSE and MXCSR only; use it where kvmInfo().xsave is false. */
  getFpu(): Buffer;
  setFpu(fpu: Buffer): void;
  /**
   * Raw struct kvm_xsave (4096 bytes, the XSAVE area in standard format): all of
   * the FPU/SSE/AVX state, a superset of getFpu(). Needs kvmInfo().xsave.
   */
  getXsave(): Buffer;
  setXsave(xsave: Buffer): void;
  /** Raw struct kvm_xcrs (392 bytes: count, flags, up to 16 {xcr, value}): XCR0. Needs kvmInfo().xcrs. */
  getXcrs(): Buffer;
  setXcrs(xcrs: Buffer): void;
  /** Raw struct kvm_debugregs (128 bytes): DR0-3, DR6, DR7, flags. */
  getDebugRegs(): Buffer;
  setDebugRegs(debugRegs: Buffer): void;
  /** KVM_GET_TSC_KHZ. */
  getTscKhz(): number;
}

/** kvm_irqchip.chip_id: master PIC, slave PIC, IOAPIC. */
export type IrqchipId = 0 | 1 | 2;

export interface NativeVm {
  /**
   * Registers `size` bytes of `buffer` (an ArrayBuffer, e.g. WebAssembly.Memory#buffer) at `guestPhysAddr`.
   * Keeps `owner` alive until close(). `size` must not exceed buffer.byteLength (grow the memory first);
   * a slot number can be registered once.
   */
  setMemory(slot: number, guestPhysAddr: number, buffer: ArrayBuffer, size: number, owner: object): void;
  /** Maps anonymous private memory owned by the addon and registers it at `guestPhysAddr` (RAM that does not fit the Wasm memory). */
  addAnonymousMemory(slot: number, guestPhysAddr: number, size: number): void;
  /**
   * Maps [fileOffset, fileOffset + size) of the file at `path` private and copy-on-write (like mapMemoryFile:
   * the guest's writes never reach the file) as addon-owned memory at `guestPhysAddr`, unmapped by close().
   * `fileOffset` and `size` must be page-aligned, `size` > 0 and the file long enough, else a KvmError (EINVAL,
   * syscall 'mmap(<path>)'); a file that cannot be opened is a KvmError of 'open(<path>)'.
   */
  addFileMemory(slot: number, guestPhysAddr: number, path: string, fileOffset: number, size: number): void;
  /**
   * Writes the addon-owned memory of `slot` (from addAnonymousMemory or addFileMemory) to the open file `fd`
   * at `fileOffset`. All-zero pages are skipped, left as holes: the file range must read as zeros beforehand
   * (e.g. a new file extended with ftruncate). Like the state accessors, EBUSY while any vCPU runs guest code;
   * EINVAL for a slot that is not addon-owned.
   */
  writeSlotToFile(slot: number, fd: number, fileOffset: number): void;
  createVcpu(id: number): NativeVcpu;
  /** KVM_IRQ_LINE on the in-kernel irqchip. */
  setIrqLine(gsi: number, level: boolean): void;
  // VM-wide snapshot state: raw kernel structs like NativeVcpu's, under the
  // same rule applied to every vCPU: while any of them runs guest code, EBUSY.
  /**
   * KVM_GET_IRQCHIP: chip 0 is the master PIC, 1 the slave PIC (raw struct
   * kvm_pic_state, 16 bytes), 2 the IOAPIC (raw struct kvm_ioapic_state, 216 bytes).
   */
  getIrqchip(chip: IrqchipId): Buffer;
  setIrqchip(chip: IrqchipId, state: Buffer): void;
  /** KVM_GET_PIT2: raw struct kvm_pit_state2 (112 bytes), the three PIT channels and flags. */
  getPit2(): Buffer;
  setPit2(state: Buffer): void;
  /**
   * KVM_GET_CLOCK: raw struct kvm_clock_data (48 bytes): u64 clock (kvmclock ns),
   * u32 flags, u32 pad0, u64 realtime, u64 host_tsc, u32 pad[4]. KVM_SET_CLOCK
   * honours the flags: with KVM_CLOCK_REALTIME (bit 2) set, the kernel advances
   * the clock by the wall time elapsed since `realtime`; clear it to restore the
   * clock exactly.
   */
  getClock(): Buffer;
  setClock(clock: Buffer): void;
  /** Creates an eventfd (non-blocking, close-on-exec) and returns its fd; closed by close(). */
  createEventfd(): number;
  /** KVM_IOEVENTFD for an MMIO (`pio` false) or port address; `fd` must come from createEventfd(). */
  addIoeventfd(fd: number, addr: number, size: number, pio: boolean, datamatch?: number): void;
  /** KVM_IRQFD: writing to `fd` (from createEventfd()) raises `gsi`. */
  addIrqfd(fd: number, gsi: number): void;
  /** Adds 1 to one of this VM's eventfds (e.g. an irqfd, which then injects its interrupt). */
  signalEventfd(fd: number): void;
  /**
   * Starts one thread per created vCPU running KVM_RUN, after every createVcpu(). Callbacks run with `this`
   * set to the VM. While any vCPU runs, the VM is kept alive and keeps the event loop alive, whether or not
   * JS still references it.
   *
   * A run ends when every vCPU has reported through onStop, whatever the reasons; run() may then be called
   * again (from the last onStop on, e.g. after awaiting a promise it settled) until close(), with the same or
   * new callbacks. The vCPUs go on from the state KVM holds: after a stop() exactly where they stopped (the
   * last port/MMIO access was completed), or from any state set in between (state accessors work between
   * runs). After a stop the guest caused the caller decides: an access whose onExit threw is completed with
   * whatever data it holds, not repeated. While a run has not ended, run() throws a KvmError EBUSY
   * (syscall 'run') saying whether it is still running or already stopping.
   */
  run(onExit: ExitHandler, onStop: StopHandler): void;
  /**
   * Stops every vCPU in a consistent state; each reports 'stopped' through onStop unless it stopped before.
   * A vCPU in KVM_RUN is kicked out of it. A port/MMIO access already posted (or returned by that last
   * KVM_RUN) is still handed to onExit, in order as usual, and completed without running guest code
   * (KVM_RUN with immediate_exit) before the vCPU reports 'stopped': no access is lost or repeated, and once
   * every vCPU reported, all vCPU and VM state can be saved and restored into a new VM, or run() resumes it.
   * Idempotent, non-blocking, safe inside onExit/onStop. A stop() made while no run is in progress (before
   * the first run(), or from the last onStop of a run on) is for the next run(): its vCPUs report 'stopped'
   * as soon as they start, without running guest code; a stop() made during a run is spent by that run.
   */
  stop(): void;
  /**
   * Joins vCPU threads, closes every fd and unmaps addon-owned memory. Normally called once every vCPU reported
   * through onStop (inside the last onStop is fine); called earlier it stops the vCPUs first without waiting
   * for onExit answers (an access not yet answered is dropped: close is final), and no callback follows.
   * Idempotent; a VM that is collected without close() is closed by its finalizer.
   */
  close(): void;
}

/** An eventfd watched from the event loop (watchFd). */
export interface FdWatch {
  /**
   * Stops watching; onReadable is not called again. Idempotent. Call it before the fd is closed
   * (the VM's close() closes its eventfds). A watch collected without close() is closed by its finalizer.
   */
  close(): void;
}

/** A socket watched from the event loop (pollFd); level-triggered: readiness nobody consumes is reported again. */
export interface SocketWatch {
  /** Replaces which readiness to report; neither stops polling until the next call. No-op after close(). */
  setEvents(readable: boolean, writable: boolean): void;
  /** Stops watching; onReady is not called again. Idempotent. Call it before the fd is closed. */
  close(): void;
}

/**
 * One readiness report. `hangup`: the peer shut down its side or the socket has an error; an error also
 * reports readable and writable, so the next read or write returns it. Polling stops after an error
 * until setEvents is called again.
 */
export type SocketReadyHandler = (readable: boolean, writable: boolean, hangup: boolean) => void;

/**
 * The results of block I/O records, in completion order: `results[i]` belongs to the record with id
 * `ids[i]` and is the record's full length (READ/WRITE), 0 (FLUSH/DISCARD/WRITE_ZEROES) or -errno
 * (-22 EINVAL for a record that fails validation, -5 EIO for a read past the end of the file, -95
 * EOPNOTSUPP for a discard or zeroing the file system cannot do).
 */
export type IoCompleteHandler = (ids: Uint32Array, results: Int32Array) => void;

export interface IoEngineOptions {
  /** io_uring submission queue size (rounded up to a power of two by the kernel; default 128, at most 32768). */
  entries?: number;
}

/**
 * Runs the I/O records of assembly/virtio/io.ts on image files with io_uring, reading and writing guest
 * RAM in place. Results never come from inside submit(): they arrive through onComplete from the event
 * loop (or inside drain()/close()). While anything is in flight the engine keeps the event loop and
 * itself (and so the memory) alive.
 */
export interface IoEngine {
  /** Adds an open file (the caller keeps ownership and closes it after close()); returns its record file index. */
  attach(fd: number): number;
  /**
   * Takes `count` 32-byte records at Wasm address `recordsPtr` (read before it returns). A record that
   * fails validation (unknown op or flags, unknown file, I/O vectors outside [0, guestBytes) or not adding
   * up to its length, more than 1024 of them, offsets past 2^63) completes with -22. Throws a RangeError if
   * the record array itself is outside the memory, a KvmError EBADF after close().
   */
  submit(recordsPtr: number, count: number): void;
  /** Records submitted whose results were not delivered yet. */
  inFlight(): number;
  /** Blocks until every record in flight (and any onComplete submits meanwhile) is done and delivered. */
  drain(): void;
  /** Drains, then releases the ring. Idempotent; a collected engine is closed by its finalizer. */
  close(): void;
}

export interface NativeAddon {
  /** Opens /dev/kvm and reads what the host offers; throws KvmError naming the failed check. */
  kvmInfo(): {
    apiVersion: number;
    maxVcpus: number;
    recommendedVcpus: number;
    /** KVM_CAP_XSAVE: getXsave/setXsave work (otherwise save the FPU with getFpu). */
    xsave: boolean;
    /** KVM_CAP_XCRS: getXcrs/setXcrs work. */
    xcrs: boolean;
  };
  getSupportedCpuid(): CpuidEntry[];
  /** MSR indices KVM_GET_MSR_INDEX_LIST reports. */
  getMsrIndexList(): number[];
  /**
   * Makes the first `size` bytes of `buffer`, the current buffer of `memory`, a private copy-on-write
   * clone of the file at `path` (mmap MAP_FIXED|MAP_PRIVATE, then madvise MADV_MERGEABLE so KSM may
   * merge pages across VMs): reads see the file, writes stay in this process and never reach the file.
   * Costs microseconds whatever the size; pages are read from the file when first touched. Call it
   * before run() of the VM using that memory (replacing memory under a running guest tears what it sees).
   * `size` must be a non-zero multiple of the page size within buffer.byteLength and the file at least
   * `size` bytes long, else a KvmError (EINVAL, syscall 'mmap(<path>)', naming the sizes) before anything
   * is mapped; a file that cannot be opened is a KvmError of 'open(<path>)'; a `memory` that is not the
   * WebAssembly.Memory whose buffer is `buffer` is a TypeError (only Wasm memory pages may be replaced).
   * The mapping lives as long as the memory's pages: nothing else needs to be kept.
   */
  mapMemoryFile(buffer: ArrayBuffer, size: number, path: string, memory: WebAssembly.Memory): void;
  Vm: new () => NativeVm;
  /**
   * Calls onReadable(count) on the JS thread whenever the eventfd `fd` (e.g. from NativeVm.createEventfd)
   * becomes readable, with the counter it read (and so reset). Never keeps the event loop alive by itself.
   */
  watchFd(fd: number, onReadable: (count: bigint) => void): FdWatch;
  /** Fills target[offset, offset + length) from getrandom(2); a range outside the buffer is a RangeError. */
  getRandom(target: ArrayBuffer, offset: number, length: number): void;
  /**
   * Locks the whole open file `fd` (shared, or exclusive for writers) with an
   * open-file-description lock, released when the fd closes; false when
   * another open file holds a conflicting lock.
   */
  lockFile(fd: number, exclusive: boolean): boolean;
  // Confined path resolution for host/fs/safe-path.ts. Failures are KvmErrors naming the call and path.
  /** Linux's O_PATH (an fd that only names a file, opening nothing); Node's fs.constants lacks it. */
  readonly O_PATH: number;
  /**
   * openat2(2) of `path` relative to directory `dirFd` with `flags` (fs.constants.O_*, O_PATH), O_CLOEXEC
   * added, `mode` used only with O_CREAT. `resolve` 'in-root' clamps `..` and absolute symlinks to dirFd
   * (like chroot); 'beneath' fails with EXDEV on any step out of it; 'no-symlinks' is 'beneath' failing
   * with ELOOP on any symlink. Magic links (/proc/self/fd/*) always fail with ELOOP. EAGAIN (a rename raced
   * with a `..`) is retried a few times; ENOSYS says the kernel lacks openat2.
   */
  openAt(dirFd: number, path: string, flags: number, mode: number, resolve: 'in-root' | 'beneath' | 'no-symlinks'): number;
  /** mkdirat(2) of one path component `name` in `dirFd`: true if made, false if the name exists already. */
  mkdirAt(dirFd: number, name: string, mode: number): boolean;
  /** unlinkat(2) of one path component `name` in `dirFd` (AT_REMOVEDIR if `isDirectory`). */
  unlinkAt(dirFd: number, name: string, isDirectory: boolean): void;
  /** renameat2(2) between one-component names in two directory fds; `noReplace` fails with EEXIST instead of replacing. */
  renameAt(oldDirFd: number, oldName: string, newDirFd: number, newName: string, noReplace: boolean): void;
  /** The target of the symlink that `fd` (opened O_PATH | O_NOFOLLOW) names. */
  readlinkAt(fd: number): string;
  /**
   * Calls onReady on the JS thread while the socket `fd` is readable (or hung up) and `readable` is set,
   * or writable and `writable` is set. Never keeps the event loop alive by itself.
   */
  pollFd(fd: number, readable: boolean, writable: boolean, onReady: SocketReadyHandler): SocketWatch;
  /**
   * A non-blocking, close-on-exec Unix stream socket listening on `path`. A socket file nothing listens on
   * any more is replaced; a path where a process listens is a KvmError EADDRINUSE, one that exists and is
   * not a socket EEXIST, one longer than 107 bytes ENAMETOOLONG (syscall 'bind(<path>)').
   */
  unixListen(path: string): number;
  /** The next connection on listening socket `fd` (non-blocking, close-on-exec), or null when none is waiting. */
  unixAccept(fd: number): number | null;
  /**
   * A non-blocking, close-on-exec Unix stream socket connected to `path`; a KvmError of 'connect(<path>)'
   * otherwise (ENOENT, ECONNREFUSED when nothing listens, EAGAIN when its backlog is full).
   */
  unixConnect(path: string): number;
  /** shutdown(2); a socket that is not connected (any more) is no error. */
  shutdownSocket(fd: number, how: 'read' | 'write' | 'both'): void;
  /** close(2) of an fd from unixListen, unixAccept or unixConnect. */
  closeFd(fd: number): void;
  /**
   * readv(2) from socket `fd` into `memory` (a WebAssembly.Memory's current buffer) through `count` I/O
   * vectors at `iov` in it ({u64 addr, u64 len} each, little-endian). Returns the bytes read, 0 at EOF, or
   * -errno: -11 EAGAIN when nothing is there, -14 EFAULT for a vector outside the memory, -22 EINVAL for an
   * empty vector, more than 1024 entries or more than 2^31 - 1 bytes. Throws only on arguments of wrong type.
   */
  socketReadv(fd: number, memory: ArrayBuffer, iov: number, count: number): number;
  /** Like socketReadv but writes (sendmsg with MSG_NOSIGNAL: a closed peer is -32 EPIPE); may be partial; empty is 0. */
  socketWritev(fd: number, memory: ArrayBuffer, iov: number, count: number): number;
  /**
   * Bind-mounts the directory `source` on `target` (both absolute; not recursive), nosuid and nodev, read-only
   * if asked (native/mount.h). Throws a KvmError of 'mount(MS_BIND)' or 'mount(MS_REMOUNT)'.
   */
  bindMount(source: string, target: string, readOnly: boolean): void;
  /**
   * mount(2) of `fstype` from `source` on `target` (absolute) with MS_* `flags` named without the prefix in lower
   * case ('rdonly', 'bind', 'rec', ...) and file-system options `data` (native/mount.h). Throws a KvmError of 'mount'.
   */
  mountFs(source: string, target: string, fstype: string, flags: string[], data: string): void;
  /** umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW); throws a KvmError of 'umount2'. */
  unmount(target: string): void;
  // The in-VMM virtio-fs server's syscalls (native/fs_share.h, called by host/virtiofs/backend.ts).
  /**
   * Opens the directory `rootPath` (openat2, no magic links) as a new share and returns its id; a KvmError of
   * 'openat2(<path>)' when it is missing or not a directory. Writes through a read-only share fail with -30 EROFS.
   */
  fsShareOpen(rootPath: string, readOnly: boolean): number;
  /** Closes the share's root and every node and file handle of it; a KvmError EBADF for an unknown id. */
  fsShareClose(share: number): void;
  // The ops: the fs* imports of assembly/env.ts with the Wasm memory's current buffer added, results >= 0 or
  // -errno (an unknown share, node or file is -9 EBADF, a pointer outside `memory` -14 EFAULT). Only arguments
  // of the wrong type throw. Pointers are addresses in `memory`; offsets and lengths of 64 bits are BigInts.
  fsLookup(share: number, memory: ArrayBuffer, parent: number, name: number, nameLen: number, stat: number): number;
  fsForget(share: number, node: number): void;
  fsGetattr(share: number, memory: ArrayBuffer, node: number, stat: number): number;
  /** `file` is -1 when the guest named no open file. */
  fsSetattr(share: number, memory: ArrayBuffer, node: number, file: number, attr: number, stat: number): number;
  fsReadlink(share: number, memory: ArrayBuffer, node: number, buf: number, cap: number): number;
  fsOpen(share: number, node: number, flags: number): number;
  fsRelease(share: number, file: number): void;
  fsCreate(share: number, memory: ArrayBuffer, parent: number, name: number, nameLen: number, mode: number,
    exclusive: boolean, uid: number, gid: number, stat: number): number;
  fsMknod(share: number, memory: ArrayBuffer, parent: number, name: number, nameLen: number, mode: number,
    rdev: number, uid: number, gid: number, stat: number): number;
  fsMkdir(share: number, memory: ArrayBuffer, parent: number, name: number, nameLen: number, mode: number,
    uid: number, gid: number, stat: number): number;
  fsSymlink(share: number, memory: ArrayBuffer, parent: number, name: number, nameLen: number, target: number,
    targetLen: number, uid: number, gid: number, stat: number): number;
  fsLink(share: number, memory: ArrayBuffer, node: number, newParent: number, name: number, nameLen: number,
    stat: number): number;
  fsUnlink(share: number, memory: ArrayBuffer, parent: number, name: number, nameLen: number, directory: boolean): number;
  fsRename(share: number, memory: ArrayBuffer, oldParent: number, oldName: number, oldLen: number, newParent: number,
    newName: number, newLen: number, flags: number): number;
  fsRead(share: number, memory: ArrayBuffer, file: number, offset: bigint, iov: number, count: number): number;
  fsWrite(share: number, memory: ArrayBuffer, file: number, offset: bigint, iov: number, count: number): number;
  fsFsync(share: number, file: number, datasync: boolean): number;
  fsFallocate(share: number, file: number, mode: number, offset: bigint, length: bigint): number;
  /** The new offset, or -errno, as a BigInt. */
  fsLseek(share: number, file: number, offset: bigint, whence: number): bigint;
  fsStatfs(share: number, memory: ArrayBuffer, node: number, out: number): number;
  fsReaddir(share: number, memory: ArrayBuffer, file: number, offset: bigint, buf: number, cap: number): number;
  fsGetxattr(share: number, memory: ArrayBuffer, node: number, name: number, nameLen: number, buf: number,
    cap: number): number;
  fsListxattr(share: number, memory: ArrayBuffer, node: number, buf: number, cap: number): number;
  fsSetxattr(share: number, memory: ArrayBuffer, node: number, name: number, nameLen: number, value: number,
    valueLen: number, flags: number): number;
  fsRemovexattr(share: number, memory: ArrayBuffer, node: number, name: number, nameLen: number): number;
  /**
   * `memory` is guest RAM: pass the WebAssembly.Memory (its buffer is replaced when it grows, and records in
   * the grown part are then still reachable) or one ArrayBuffer (records must then lie within its byteLength
   * at construction). `guestBytes` bounds every I/O vector. Throws a KvmError of 'io_uring_setup' (e.g. EPERM:
   * see /proc/sys/kernel/io_uring_disabled) where io_uring is unavailable.
   */
  IoEngine: new (memory: WebAssembly.Memory | ArrayBuffer, guestBytes: number, onComplete: IoCompleteHandler,
    options?: IoEngineOptions) => IoEngine;
}

/** Errors thrown by the addon carry the syscall/ioctl and the errno name. */
export interface KvmError extends Error {
  code: string;    // errno name, e.g. 'EACCES'
  errno: number;
  syscall: string; // e.g. 'ioctl(KVM_CREATE_VM)' or 'open(/dev/kvm)'
}

export function isKvmError(e: unknown): e is KvmError {
  return e instanceof Error && typeof (e as Partial<KvmError>).syscall === 'string';
}

const here = path.dirname(fileURLToPath(import.meta.url));
/** Repository root: dist/host/native.js sits two levels below it. */
export const repoRoot = path.resolve(here, '..', '..');

let addon: NativeAddon | undefined;

export function native(): NativeAddon {
  addon ??= createRequire(import.meta.url)(path.join(repoRoot, 'build', 'native', 'Release', 'hako.node')) as NativeAddon;
  return addon;
}
