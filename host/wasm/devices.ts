// Instantiates the device models (assembly/, built to build/wasm/hako.wasm)
// on a fresh WebAssembly.Memory, and adapts their raw exports for the VMM.
// Guest RAM is that memory: the guest's low RAM is Wasm addresses
// [0, 3 GiB) and the module's own data and heap start at 3 GiB (asc
// --memoryBase), so the initial size the module declares already covers the
// whole guest RAM window. The maximum is 4 GiB for the module's heap to grow.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { repoRoot } from '../native.js';
import { ConsoleInput } from './console-input.js';
import { memoryImportLimits } from './memory-import.js';

export const WASM_PATH = path.join(repoRoot, 'build', 'wasm', 'hako.wasm');
/** 4 GiB: the largest memory Node 20 can have (no memory64). */
export const MAX_WASM_PAGES = 65536;

/**
 * The host side of virtio-vsock (host/vsock/backend.ts): one host Unix socket
 * per connection, named by a `handle` the host chose. `iov` is the Wasm address
 * of `count` 16-byte I/O vectors {u64 addr, u64 len}. Contract:
 * /work/notes/vsock-api.md (imports of assembly/env.ts).
 */
export interface VsockCallbacks {
  /** readv: > 0 bytes, 0 EOF, -11 EAGAIN nothing now, other -errno. */
  read(handle: number, iov: number, count: number): number;
  /** writev: >= 0 bytes (may be partial), -11 EAGAIN, other -errno. */
  write(handle: number, iov: number, count: number): number;
  /** Which readiness to report through Devices.vsockReady from now on (initially none). */
  watch(handle: number, readable: boolean, writable: boolean): void;
  /** The guest connects to host port `hostPort`: a new handle, or -errno. */
  connect(hostPort: number): number;
  /** The guest accepted host-initiated connection `handle`. */
  connected(handle: number): void;
  /** The guest shut down its side (flags: 1 RCV, 2 SEND). */
  shutdown(handle: number, flags: number): void;
  /** The connection is over: close the socket and forget `handle`. */
  close(handle: number): void;
}

/**
 * The host side of virtio-fs (host/virtiofs/backend.ts): the fs* imports of
 * assembly/env.ts, one method each, with the same arguments (u64 values as
 * BigInts, bool as boolean). `share` is the id the device was added with;
 * nodes and files are the host's handles. Results are >= 0 or -errno.
 * Contract: /work/notes/virtiofs-api.md.
 */
export interface FsCallbacks {
  lookup(share: number, parent: number, name: number, nameLen: number, stat: number): number;
  forget(share: number, node: number): void;
  getattr(share: number, node: number, stat: number): number;
  /** `file` is -1 when the guest gave no file handle. */
  setattr(share: number, node: number, file: number, attr: number, stat: number): number;
  readlink(share: number, node: number, buf: number, cap: number): number;
  open(share: number, node: number, flags: number): number;
  release(share: number, file: number): void;
  create(share: number, parent: number, name: number, nameLen: number, mode: number, exclusive: boolean,
    uid: number, gid: number, stat: number): number;
  mknod(share: number, parent: number, name: number, nameLen: number, mode: number, rdev: number,
    uid: number, gid: number, stat: number): number;
  mkdir(share: number, parent: number, name: number, nameLen: number, mode: number, uid: number, gid: number,
    stat: number): number;
  symlink(share: number, parent: number, name: number, nameLen: number, target: number, targetLen: number,
    uid: number, gid: number, stat: number): number;
  link(share: number, node: number, newParent: number, name: number, nameLen: number, stat: number): number;
  unlink(share: number, parent: number, name: number, nameLen: number, directory: boolean): number;
  rename(share: number, oldParent: number, oldName: number, oldLen: number, newParent: number, newName: number,
    newLen: number, flags: number): number;
  read(share: number, file: number, offset: bigint, iov: number, count: number): number;
  write(share: number, file: number, offset: bigint, iov: number, count: number): number;
  fsync(share: number, file: number, datasync: boolean): number;
  fallocate(share: number, file: number, mode: number, offset: bigint, length: bigint): number;
  /** The new offset or -errno. */
  lseek(share: number, file: number, offset: bigint, whence: number): bigint;
  statfs(share: number, node: number, out: number): number;
  readdir(share: number, file: number, offset: bigint, buf: number, cap: number): number;
  getxattr(share: number, node: number, name: number, nameLen: number, buf: number, cap: number): number;
  listxattr(share: number, node: number, buf: number, cap: number): number;
  setxattr(share: number, node: number, name: number, nameLen: number, value: number, valueLen: number,
    flags: number): number;
  removexattr(share: number, node: number, name: number, nameLen: number): number;
}

/** What a vsock or fs import answers when the VM has no backend for it: -ENODEV. */
const ENODEV = -19;

/**
 * What the device models call back into, synchronously, in the middle of
 * handling an access: a callback must not call into Devices itself.
 */
export interface DeviceCallbacks {
  /** Level of interrupt line `gsi` changed (KVM_IRQ_LINE on the in-kernel irqchip). Called only on changes. */
  irqLine(gsi: number, level: boolean): void;
  /** The guest transmitted one byte on the serial console (COM1). */
  consoleWrite(byte: number): void;
  /** The guest pulsed the CPU reset line (i8042). Can come several times for one reboot. */
  resetRequest(): void;
  /** The guest wrote `code` to the exit port 0xf4 (our guest kernel: 0 poweroff, 1 panic). */
  guestExit(code: number): void;
  /** Host wall-clock time in UNIX seconds, fractional (e.g. Date.now() / 1000), for the RTC. */
  wallClockSeconds(): number;
  /** A virtio device interrupted on line `gsi`: an edge (write the irqfd bound to it). */
  irqPulse(gsi: number): void;
  /** Fill guest RAM [gpa, gpa + length) (checked to lie in guest RAM) with random bytes, for virtio-rng. */
  fillRandom(gpa: number, length: number): void;
  /**
   * The block devices hand over `count` I/O records at Wasm address `records`
   * (layout: assembly/virtio/io.ts); read them before returning. Complete
   * them later with Devices.ioComplete, then ioCompleteEnd.
   */
  ioSubmit(records: number, count: number): void;
  /** The vsock device's host sockets; without it every vsock import fails with -ENODEV. */
  vsock?: VsockCallbacks;
  /** The virtio-fs devices' shared directories; without it every fs import fails with -ENODEV. */
  fs?: FsCallbacks;
}

/** virtio-fs cache modes in the numbering of addVirtioFs (assembly/virtio/devices.ts). */
const FS_CACHE_MODE_NUMBERS = { none: 0, auto: 1, always: 2 } as const;
/** The tag buffer's size: virtio-fs config space u8 tag[36]. */
const FS_TAG_BYTES = 36;

/** The device models: hand them every port-I/O and MMIO exit. */
export interface Devices {
  /** Guest RAM and the module's heap; keep a reference for the VM's lifetime. */
  readonly memory: WebAssembly.Memory;
  /**
   * One emulated access, shaped like native's ExitHandler: returns the value
   * read (zero-extended), or 0n for a write. Also feeds pending console input.
   */
  access(kind: 'pio' | 'mmio', addr: number, size: number, isWrite: boolean, value: bigint): bigint;
  /** Queues console input for COM1; it is handed over as the guest makes room. */
  consoleInput(data: Uint8Array): void;
  /** A guest `in` of `size` bytes (1, 2, 4); returns the zero-extended value. Unclaimed ports read all ones. */
  ioRead(port: number, size: number): number;
  /** A guest `out` of `size` bytes; `value` is cut to `size` bytes. */
  ioWrite(port: number, size: number, value: number): void;
  /** A guest MMIO read of `size` bytes (1, 2, 4, 8). Unclaimed addresses read 0. */
  mmioRead(addr: bigint, size: number): bigint;
  mmioWrite(addr: bigint, size: number, value: bigint): void;
  /**
   * Offers one byte to COM1 directly (what consoleInput uses). False when the
   * UART cannot take it now; room appears after the guest's next access to it.
   */
  serialReceive(byte: number): boolean;
  /**
   * Every device's state as a versioned blob (format: assembly/snapshot.ts)
   * for a snapshot. Console input still queued on the host side is not in it.
   * Throws while block I/O is in flight (ioInFlight() > 0): drain it first.
   */
  saveState(): Uint8Array;
  /**
   * Replaces every device's state with a blob from saveState (possibly of
   * another instance), all or nothing: throws, changing nothing, if the blob
   * is malformed, of another format version or holds impossible values.
   * Interrupt lines are then driven to the restored levels (irqLine fires
   * for lines that change). Throws while block I/O is in flight.
   */
  restoreState(bytes: Uint8Array): void;
  /**
   * Size of guest low RAM ([0, bytes) of `memory`), which bounds every address
   * a virtio driver hands a device. Call once, before adding virtio devices.
   */
  setGuestRamBytes(bytes: number): void;
  /** Adds a virtio-rng device with its virtio-mmio window at `base` and interrupt line `gsi`; returns its index. */
  addVirtioRng(base: bigint, gsi: number): number;
  /** The guest kicked queue `queue` of virtio device `device` (its ioeventfd fired). */
  virtioNotify(device: number, queue: number): void;
  /** Why virtio device `device` set DEVICE_NEEDS_RESET (assembly/virtio/queue.ts QueueError), 0 if it did not. */
  virtioFailure(device: number): number;
  /**
   * A restored VM is about to run (its irqchip restored): devices raise the
   * interrupts their restore deferred, e.g. a config change for a disk image
   * of another size than the snapshot's.
   */
  virtioResumed(): void;
  /**
   * Adds a virtio-blk device for host image file `file` (the records' file
   * field) of `sectors` 512-byte sectors; returns its index. Its GET_ID
   * serial is "hako-disk-<file>".
   */
  addVirtioBlock(base: bigint, gsi: number, file: number, sectors: bigint, readOnly: boolean): number;
  /** I/O record `id` finished with `result`: the bytes transferred, or -errno. Unknown ids are ignored. */
  ioComplete(id: number, result: number): void;
  /** After a batch of ioComplete calls: raises the interrupts they earned (and may submit more I/O). */
  ioCompleteEnd(): void;
  /** I/O records submitted and not yet completed; must be 0 before saveState or restoreState. */
  ioInFlight(): number;
  /** Adds a virtio-vsock device whose guest has CID `guestCid`; returns its index. */
  addVirtioVsock(base: bigint, gsi: number, guestCid: bigint): number;
  /**
   * A host client asked for guest port `guestPort` on new host socket `handle`: the local (host) port the
   * device uses, or -errno (-111 ECONNREFUSED: guest not ready, too many connections). The outcome comes
   * later as VsockCallbacks.connected or close.
   */
  vsockHostConnect(device: number, handle: number, guestPort: number): number;
  /** Host socket `handle` is ready (hangup and errors count as readable), as VsockCallbacks.watch asked. */
  vsockReady(device: number, handle: number, readable: boolean, writable: boolean): void;
  /**
   * After a restore: closes every connection (VsockCallbacks.close each), sets the guest's CID and queues a
   * TRANSPORT_RESET event so the guest drops its sockets and reads the new CID.
   */
  vsockTransportReset(device: number, guestCid: bigint): void;
  /**
   * Adds a virtio-fs device the guest mounts by `tag` (1 to 36 bytes of UTF-8), serving host share `share`
   * (FsCallbacks' share argument); returns its index.
   */
  addVirtioFs(base: bigint, gsi: number, tag: string, share: number, readOnly: boolean,
    cache: keyof typeof FS_CACHE_MODE_NUMBERS): number;
}

/** The module's exports with `--bindings raw`: u32 comes back as a signed i32, u64 as a signed BigInt. */
interface RawExports {
  ioRead(port: number, size: number): number;
  ioWrite(port: number, size: number, value: number): void;
  mmioRead(addr: bigint, size: number): bigint;
  mmioWrite(addr: bigint, size: number, value: bigint): void;
  serialReceive(byte: number): number;
  saveState(): number;
  stateLength(): number;
  allocState(length: number): number;
  restoreState(): number;
  restoreErrorSection(): number;
  setGuestRamBytes(bytes: bigint): void;
  addVirtioRng(base: bigint, gsi: number): number;
  virtioNotify(device: number, queue: number): void;
  virtioFailure(device: number): number;
  virtioResumed(): void;
  addVirtioBlock(base: bigint, gsi: number, file: number, sectors: bigint, readOnly: number): number;
  ioComplete(id: number, result: number): void;
  ioCompleteEnd(): void;
  ioInFlight(): number;
  addVirtioVsock(base: bigint, gsi: number, guestCid: bigint): number;
  vsockHostConnect(device: number, handle: number, guestPort: number): number;
  vsockReady(device: number, handle: number, readable: number, writable: number): void;
  vsockTransportReset(device: number, guestCid: bigint): void;
  virtioFsTagBuffer(): number;
  addVirtioFs(base: bigint, gsi: number, share: number, readOnly: number, cacheMode: number): number;
}

/** assembly/snapshot.ts MAX_STATE_LENGTH. */
export const MAX_STATE_LENGTH = 1 << 20;

/** Why the module refused a blob, by assembly/snapshot.ts RestoreStatus. */
const RESTORE_ERRORS: Record<number, string> = {
  1: 'it is too large',
  2: 'it does not start with the magic "HKDS" (not a hako device-state blob)',
  3: 'its format version is not the supported one (1)',
  4: 'it is truncated',
  5: 'it has bytes after its last section',
  6: 'it has a section for a device this machine does not have',
  7: 'it has two sections for one device',
  8: 'it lacks the section of a device this machine has',
  9: 'a section has a version this device model does not support',
  10: 'a section has the wrong length or values the device cannot hold',
};

/** A section tag as its four ASCII characters, e.g. "UART". */
function tagName(tag: number): string {
  const bytes = [tag & 0xff, (tag >>> 8) & 0xff, (tag >>> 16) & 0xff, tag >>> 24];
  return bytes.every((b) => b >= 0x20 && b < 0x7f)
    ? `"${String.fromCharCode(...bytes)}"`
    : `0x${(tag >>> 0).toString(16).padStart(8, '0')}`;
}

interface CompiledModule {
  module: WebAssembly.Module;
  initialPages: number;
}

const compiled = new Map<string, Promise<CompiledModule>>();

async function compile(wasmPath: string): Promise<CompiledModule> {
  let bytes: Buffer;
  try {
    bytes = await readFile(wasmPath);
  } catch (e) {
    throw new Error(
      `cannot read the device module ${wasmPath} (${(e as Error).message}); ` +
        'build it with `npx asc --config asconfig.json --target release`',
    );
  }
  const { initial } = memoryImportLimits(bytes);
  if (initial > MAX_WASM_PAGES) {
    throw new Error(`${wasmPath} needs ${initial} memory pages, more than the ${MAX_WASM_PAGES} a Wasm memory can have`);
  }
  return { module: await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>), initialPages: initial };
}

/** Reads an AssemblyScript string (UTF-16, byte length in the word before it) out of the module's memory. */
function readString(memory: WebAssembly.Memory, ptr: number): string {
  const at = ptr >>> 0;
  if (at < 4 || at > memory.buffer.byteLength) return '(no message)';
  const length = new DataView(memory.buffer).getUint32(at - 4, true);
  if (at + length > memory.buffer.byteLength) return '(unreadable message)';
  return Buffer.from(memory.buffer, at, length).toString('utf16le');
}

/** Creates the memory and a fresh instance of the device models (fresh device state each call). */
export async function loadDevices(callbacks: DeviceCallbacks, wasmPath: string = WASM_PATH): Promise<Devices> {
  let pending = compiled.get(wasmPath);
  if (!pending) {
    pending = compile(wasmPath);
    compiled.set(wasmPath, pending);
    pending.catch(() => compiled.delete(wasmPath));
  }
  const { module, initialPages } = await pending;
  const memory = new WebAssembly.Memory({ initial: initialPages, maximum: MAX_WASM_PAGES });
  const env = {
    memory,
    irqLine: (gsi: number, level: number) => callbacks.irqLine(gsi >>> 0, level !== 0),
    consoleWrite: (byte: number) => callbacks.consoleWrite(byte & 0xff),
    resetRequest: () => callbacks.resetRequest(),
    guestExit: (code: number) => callbacks.guestExit(code >>> 0),
    wallClockSeconds: () => callbacks.wallClockSeconds(),
    irqPulse: (gsi: number) => callbacks.irqPulse(gsi >>> 0),
    fillRandom: (gpa: bigint, length: number) => callbacks.fillRandom(Number(gpa), length >>> 0),
    ioSubmit: (records: number, count: number) => callbacks.ioSubmit(records >>> 0, count >>> 0),
    vsockRead: (handle: number, iov: number, count: number) => callbacks.vsock?.read(handle >>> 0, iov >>> 0, count >>> 0) ?? ENODEV,
    vsockWrite: (handle: number, iov: number, count: number) => callbacks.vsock?.write(handle >>> 0, iov >>> 0, count >>> 0) ?? ENODEV,
    vsockWatch: (handle: number, readable: number, writable: number) => callbacks.vsock?.watch(handle >>> 0, readable !== 0, writable !== 0),
    vsockConnect: (hostPort: number) => callbacks.vsock?.connect(hostPort >>> 0) ?? ENODEV,
    vsockConnected: (handle: number) => callbacks.vsock?.connected(handle >>> 0),
    vsockShutdown: (handle: number, flags: number) => callbacks.vsock?.shutdown(handle >>> 0, flags >>> 0),
    vsockClose: (handle: number) => callbacks.vsock?.close(handle >>> 0),
    // Wasm u32 and usize arrive as signed numbers, bool as 0/1, u64 as BigInt.
    fsLookup: (share: number, parent: number, name: number, nameLen: number, stat: number) =>
      callbacks.fs?.lookup(share >>> 0, parent >>> 0, name >>> 0, nameLen >>> 0, stat >>> 0) ?? ENODEV,
    fsForget: (share: number, node: number) => callbacks.fs?.forget(share >>> 0, node >>> 0),
    fsGetattr: (share: number, node: number, stat: number) => callbacks.fs?.getattr(share >>> 0, node >>> 0, stat >>> 0) ?? ENODEV,
    fsSetattr: (share: number, node: number, file: number, attr: number, stat: number) =>
      callbacks.fs?.setattr(share >>> 0, node >>> 0, file < 0 ? -1 : file, attr >>> 0, stat >>> 0) ?? ENODEV,
    fsReadlink: (share: number, node: number, buf: number, cap: number) =>
      callbacks.fs?.readlink(share >>> 0, node >>> 0, buf >>> 0, cap >>> 0) ?? ENODEV,
    fsOpen: (share: number, node: number, flags: number) => callbacks.fs?.open(share >>> 0, node >>> 0, flags >>> 0) ?? ENODEV,
    fsRelease: (share: number, file: number) => callbacks.fs?.release(share >>> 0, file >>> 0),
    fsCreate: (share: number, parent: number, name: number, nameLen: number, mode: number, exclusive: number,
      uid: number, gid: number, stat: number) => callbacks.fs?.create(share >>> 0, parent >>> 0, name >>> 0,
      nameLen >>> 0, mode >>> 0, exclusive !== 0, uid >>> 0, gid >>> 0, stat >>> 0) ?? ENODEV,
    fsMknod: (share: number, parent: number, name: number, nameLen: number, mode: number, rdev: number,
      uid: number, gid: number, stat: number) => callbacks.fs?.mknod(share >>> 0, parent >>> 0, name >>> 0,
      nameLen >>> 0, mode >>> 0, rdev >>> 0, uid >>> 0, gid >>> 0, stat >>> 0) ?? ENODEV,
    fsMkdir: (share: number, parent: number, name: number, nameLen: number, mode: number, uid: number, gid: number,
      stat: number) => callbacks.fs?.mkdir(share >>> 0, parent >>> 0, name >>> 0, nameLen >>> 0, mode >>> 0,
      uid >>> 0, gid >>> 0, stat >>> 0) ?? ENODEV,
    fsSymlink: (share: number, parent: number, name: number, nameLen: number, target: number, targetLen: number,
      uid: number, gid: number, stat: number) => callbacks.fs?.symlink(share >>> 0, parent >>> 0, name >>> 0,
      nameLen >>> 0, target >>> 0, targetLen >>> 0, uid >>> 0, gid >>> 0, stat >>> 0) ?? ENODEV,
    fsLink: (share: number, node: number, newParent: number, name: number, nameLen: number, stat: number) =>
      callbacks.fs?.link(share >>> 0, node >>> 0, newParent >>> 0, name >>> 0, nameLen >>> 0, stat >>> 0) ?? ENODEV,
    fsUnlink: (share: number, parent: number, name: number, nameLen: number, directory: number) =>
      callbacks.fs?.unlink(share >>> 0, parent >>> 0, name >>> 0, nameLen >>> 0, directory !== 0) ?? ENODEV,
    fsRename: (share: number, oldParent: number, oldName: number, oldLen: number, newParent: number, newName: number,
      newLen: number, flags: number) => callbacks.fs?.rename(share >>> 0, oldParent >>> 0, oldName >>> 0,
      oldLen >>> 0, newParent >>> 0, newName >>> 0, newLen >>> 0, flags >>> 0) ?? ENODEV,
    fsRead: (share: number, file: number, offset: bigint, iov: number, count: number) =>
      callbacks.fs?.read(share >>> 0, file >>> 0, offset, iov >>> 0, count >>> 0) ?? ENODEV,
    fsWrite: (share: number, file: number, offset: bigint, iov: number, count: number) =>
      callbacks.fs?.write(share >>> 0, file >>> 0, offset, iov >>> 0, count >>> 0) ?? ENODEV,
    fsFsync: (share: number, file: number, datasync: number) => callbacks.fs?.fsync(share >>> 0, file >>> 0, datasync !== 0) ?? ENODEV,
    fsFallocate: (share: number, file: number, mode: number, offset: bigint, length: bigint) =>
      callbacks.fs?.fallocate(share >>> 0, file >>> 0, mode >>> 0, offset, length) ?? ENODEV,
    fsLseek: (share: number, file: number, offset: bigint, whence: number) =>
      callbacks.fs?.lseek(share >>> 0, file >>> 0, offset, whence >>> 0) ?? BigInt(ENODEV),
    fsStatfs: (share: number, node: number, out: number) => callbacks.fs?.statfs(share >>> 0, node >>> 0, out >>> 0) ?? ENODEV,
    fsReaddir: (share: number, file: number, offset: bigint, buf: number, cap: number) =>
      callbacks.fs?.readdir(share >>> 0, file >>> 0, offset, buf >>> 0, cap >>> 0) ?? ENODEV,
    fsGetxattr: (share: number, node: number, name: number, nameLen: number, buf: number, cap: number) =>
      callbacks.fs?.getxattr(share >>> 0, node >>> 0, name >>> 0, nameLen >>> 0, buf >>> 0, cap >>> 0) ?? ENODEV,
    fsListxattr: (share: number, node: number, buf: number, cap: number) =>
      callbacks.fs?.listxattr(share >>> 0, node >>> 0, buf >>> 0, cap >>> 0) ?? ENODEV,
    fsSetxattr: (share: number, node: number, name: number, nameLen: number, value: number, valueLen: number,
      flags: number) => callbacks.fs?.setxattr(share >>> 0, node >>> 0, name >>> 0, nameLen >>> 0, value >>> 0,
      valueLen >>> 0, flags >>> 0) ?? ENODEV,
    fsRemovexattr: (share: number, node: number, name: number, nameLen: number) =>
      callbacks.fs?.removexattr(share >>> 0, node >>> 0, name >>> 0, nameLen >>> 0) ?? ENODEV,
    // Only reachable through a bug in assembly/: guest input must never abort.
    abort: (message: number, file: number, line: number, column: number) => {
      throw new Error(
        `device module aborted: ${readString(memory, message)} at ${readString(memory, file)}:${line}:${column}`,
      );
    },
  };
  const instance = await WebAssembly.instantiate(module, { env });
  const raw = instance.exports as unknown as RawExports;
  const ioRead = (port: number, size: number) => raw.ioRead(port, size) >>> 0;
  const ioWrite = (port: number, size: number, value: number) => raw.ioWrite(port, size, value);
  const mmioRead = (addr: bigint, size: number) => BigInt.asUintN(64, raw.mmioRead(addr, size));
  const mmioWrite = (addr: bigint, size: number, value: bigint) => raw.mmioWrite(addr, size, value);
  const serialReceive = (byte: number) => raw.serialReceive(byte) !== 0;
  const input = new ConsoleInput(serialReceive);
  // Block requests in flight are not part of a device-state blob: their completions would be lost.
  const checkNoIoInFlight = (what: string) => {
    const inFlight = raw.ioInFlight() >>> 0;
    if (inFlight !== 0) throw new Error(`cannot ${what} device state with ${inFlight} block I/O requests in flight; drain them first`);
  };
  const saveState = () => {
    checkNoIoInFlight('save');
    const at = raw.saveState() >>> 0;
    return new Uint8Array(memory.buffer, at, raw.stateLength() >>> 0).slice();
  };
  const restoreState = (bytes: Uint8Array) => {
    if (bytes.length > MAX_STATE_LENGTH) {
      throw new Error(`device state blob rejected: ${bytes.length} bytes, more than the ${MAX_STATE_LENGTH} allowed`);
    }
    checkNoIoInFlight('restore');
    const at = raw.allocState(bytes.length) >>> 0;
    // The allocation may have grown the memory: take a fresh view.
    new Uint8Array(memory.buffer, at, bytes.length).set(bytes);
    const status = raw.restoreState() >>> 0;
    if (status === 0) return;
    const tag = raw.restoreErrorSection() >>> 0;
    const where = tag === 0 ? '' : ` (section ${tagName(tag)})`;
    const why = RESTORE_ERRORS[status] ?? `status ${status}`;
    throw new Error(`device state blob rejected${where}: ${why}; no device was changed`);
  };
  return {
    memory,
    access(kind, addr, size, isWrite, value) {
      if (kind === 'mmio') {
        if (!isWrite) return mmioRead(BigInt(addr), size);
        mmioWrite(BigInt(addr), size, value);
        return 0n;
      }
      let result = 0n;
      if (isWrite) ioWrite(addr, size, Number(BigInt.asUintN(32, value)));
      else result = BigInt(ioRead(addr, size));
      input.pump(); // only a port access can make room in the UART
      return result;
    },
    consoleInput: (data) => input.push(data),
    ioRead,
    ioWrite,
    mmioRead,
    mmioWrite,
    serialReceive,
    saveState,
    restoreState,
    setGuestRamBytes: (bytes) => raw.setGuestRamBytes(BigInt(bytes)),
    addVirtioRng: (base, gsi) => raw.addVirtioRng(base, gsi) >>> 0,
    virtioNotify: (device, queue) => raw.virtioNotify(device, queue),
    virtioFailure: (device) => raw.virtioFailure(device) >>> 0,
    virtioResumed: () => raw.virtioResumed(),
    addVirtioBlock: (base, gsi, file, sectors, readOnly) => raw.addVirtioBlock(base, gsi, file, sectors, readOnly ? 1 : 0) >>> 0,
    ioComplete: (id, result) => raw.ioComplete(id, result),
    ioCompleteEnd: () => raw.ioCompleteEnd(),
    ioInFlight: () => raw.ioInFlight() >>> 0,
    addVirtioVsock: (base, gsi, guestCid) => raw.addVirtioVsock(base, gsi, guestCid) >>> 0,
    vsockHostConnect: (device, handle, guestPort) => raw.vsockHostConnect(device, handle, guestPort),
    vsockReady: (device, handle, readable, writable) => raw.vsockReady(device, handle, readable ? 1 : 0, writable ? 1 : 0),
    vsockTransportReset: (device, guestCid) => raw.vsockTransportReset(device, guestCid),
    addVirtioFs: (base, gsi, tag, share, readOnly, cache) => {
      if (typeof raw.addVirtioFs !== 'function') {
        throw new Error(`${wasmPath} has no virtio-fs device (addVirtioFs); rebuild it with \`npx asc --config asconfig.json --target release\``);
      }
      const bytes = Buffer.from(tag, 'utf8');
      if (bytes.length === 0 || bytes.length > FS_TAG_BYTES) {
        throw new Error(`virtio-fs tag must be 1 to ${FS_TAG_BYTES} bytes of UTF-8, got ${bytes.length}: ${JSON.stringify(tag)}`);
      }
      // The module zeroes the buffer after each use: the tag is NUL-padded.
      new Uint8Array(memory.buffer, raw.virtioFsTagBuffer() >>> 0, FS_TAG_BYTES).set(bytes);
      return raw.addVirtioFs(base, gsi, share, readOnly ? 1 : 0, FS_CACHE_MODE_NUMBERS[cache]) >>> 0;
    },
  };
}
