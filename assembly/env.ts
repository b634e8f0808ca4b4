// Functions the host supplies to the device models (Wasm import module "env",
// provided by host/wasm/devices.ts). The AS runtime also imports env.abort.

/** Sets interrupt line `gsi` of the in-kernel irqchip to `level` (1 asserted, 0 deasserted). Called only on changes. */
@external("env", "irqLine")
export declare function irqLine(gsi: u32, level: u32): void;

/** One byte the guest transmitted on the serial console. */
@external("env", "consoleWrite")
export declare function consoleWrite(byte: u32): void;

/** The guest pulsed the CPU reset line (i8042). May be called more than once per reset. */
@external("env", "resetRequest")
export declare function resetRequest(): void;

/** Host wall-clock time as UNIX seconds (fractional), read by the RTC. */
@external("env", "wallClockSeconds")
export declare function wallClockSeconds(): f64;

/** The guest wrote `code` to the exit port (our guest kernel: 0 = poweroff, 1 = panic). */
@external("env", "guestExit")
export declare function guestExit(code: u32): void;

/** Pulses interrupt line `gsi` (an edge: the host writes the irqfd bound to it). */
@external("env", "irqPulse")
export declare function irqPulse(gsi: u32): void;

/** Fills guest RAM [gpa, gpa + len) with random bytes; the range is in guest RAM (checked by the caller). */
@external("env", "fillRandom")
export declare function fillRandom(gpa: u64, len: u32): void;

// virtio-vsock host side (host/vsock/): one host Unix socket per connection,
// named by a small `handle` the host chose. An iov is `count` 16-byte entries
// {u64 addr, u64 len} at Wasm address `iov`, each range guest RAM (checked)
// or the device's own buffers. Results are byte counts or -errno.

/** readv from the socket: > 0 bytes read, 0 end of file, -11 (EAGAIN) nothing now, other -errno an error. */
@external("env", "vsockRead")
export declare function vsockRead(handle: u32, iov: usize, count: u32): i32;

/** writev to the socket: >= 0 bytes written (may be partial), -11 (EAGAIN) no room now, other -errno an error. */
@external("env", "vsockWrite")
export declare function vsockWrite(handle: u32, iov: usize, count: u32): i32;

/** Which readiness the host should report through vsockReady from now on (initially none). */
@external("env", "vsockWatch")
export declare function vsockWatch(handle: u32, readable: bool, writable: bool): void;

/** The guest asks to connect to host port `hostPort`: a new handle >= 0 for the connected socket, or -errno. */
@external("env", "vsockConnect")
export declare function vsockConnect(hostPort: u32): i32;

/** The guest accepted the host-initiated connection `handle` (vsockHostConnect): the host answers "OK <port>". */
@external("env", "vsockConnected")
export declare function vsockConnected(handle: u32): void;

/** The guest shut its side down (flags: 1 RCV, 2 SEND); on SEND the host shuts the socket for writing. */
@external("env", "vsockShutdown")
export declare function vsockShutdown(handle: u32, flags: u32): void;

/** The connection is over: the host closes the socket and forgets `handle`; the device never uses it again. */
@external("env", "vsockClose")
export declare function vsockClose(handle: u32): void;

// virtio-fs host side (host/virtiofs/): one host directory tree per `share`.
// A `node` is a host O_PATH handle (0 = the share's root), a `file` a host
// open file handle; Wasm hands the guest only nodeids and fhs that map to
// handles the host gave it. Names are single path components Wasm checked;
// pointers are guest RAM ranges Wasm checked or Wasm's own heap. `stat` is the
// 96-byte stat record (assembly/virtio/fs/abi.ts STAT_*). Results are >= 0 or
// -errno. Contract: /work/notes/virtiofs-api.md.

/** Looks `name` up under `parent`: a new node handle, its stat record at `stat`. */
@external("env", "fsLookup")
export declare function fsLookup(share: u32, parent: u32, name: usize, nameLen: u32, stat: usize): i32;

/** Closes node handle `node` (never 0). */
@external("env", "fsForget")
export declare function fsForget(share: u32, node: u32): void;

@external("env", "fsGetattr")
export declare function fsGetattr(share: u32, node: u32, stat: usize): i32;

/** Applies the 48-byte attr record at `attr` (through open file `file`, or -1 for none); the new stat at `stat`. */
@external("env", "fsSetattr")
export declare function fsSetattr(share: u32, node: u32, file: i32, attr: usize, stat: usize): i32;

/** The target of symlink `node` into `buf` (at most `cap` bytes, no NUL): its length. */
@external("env", "fsReadlink")
export declare function fsReadlink(share: u32, node: u32, buf: usize, cap: u32): i32;

/** Opens `node` with `flags` (masked by Wasm): a new file handle. */
@external("env", "fsOpen")
export declare function fsOpen(share: u32, node: u32, flags: u32): i32;

@external("env", "fsRelease")
export declare function fsRelease(share: u32, file: u32): void;

/** Creates (or, unless `exclusive`, finds) regular file `name` under `parent`: a new node handle. */
@external("env", "fsCreate")
export declare function fsCreate(
  share: u32, parent: u32, name: usize, nameLen: u32, mode: u32, exclusive: bool, uid: u32, gid: u32, stat: usize,
): i32;

/** Makes a regular file, FIFO, socket or whiteout (char 0:0) `name` under `parent`: a new node handle. */
@external("env", "fsMknod")
export declare function fsMknod(
  share: u32, parent: u32, name: usize, nameLen: u32, mode: u32, rdev: u32, uid: u32, gid: u32, stat: usize,
): i32;

@external("env", "fsMkdir")
export declare function fsMkdir(
  share: u32, parent: u32, name: usize, nameLen: u32, mode: u32, uid: u32, gid: u32, stat: usize,
): i32;

@external("env", "fsSymlink")
export declare function fsSymlink(
  share: u32, parent: u32, name: usize, nameLen: u32, target: usize, targetLen: u32, uid: u32, gid: u32, stat: usize,
): i32;

/** Hard-links `node` as `name` under `newParent`: a new node handle (of the same inode). */
@external("env", "fsLink")
export declare function fsLink(share: u32, node: u32, newParent: u32, name: usize, nameLen: u32, stat: usize): i32;

@external("env", "fsUnlink")
export declare function fsUnlink(share: u32, parent: u32, name: usize, nameLen: u32, directory: bool): i32;

/** renameat2 with `flags` RENAME_NOREPLACE (1) and/or RENAME_EXCHANGE (2). */
@external("env", "fsRename")
export declare function fsRename(
  share: u32, oldParent: u32, oldName: usize, oldLen: u32, newParent: u32, newName: usize, newLen: u32, flags: u32,
): i32;

/** preadv into the `count` pieces at `iov`: bytes read. */
@external("env", "fsRead")
export declare function fsRead(share: u32, file: u32, offset: u64, iov: usize, count: u32): i32;

/** pwritev from the `count` pieces at `iov`: bytes written. */
@external("env", "fsWrite")
export declare function fsWrite(share: u32, file: u32, offset: u64, iov: usize, count: u32): i32;

@external("env", "fsFsync")
export declare function fsFsync(share: u32, file: u32, datasync: bool): i32;

@external("env", "fsFallocate")
export declare function fsFallocate(share: u32, file: u32, mode: u32, offset: u64, length: u64): i32;

/** SEEK_DATA (3) / SEEK_HOLE (4): the offset found. */
@external("env", "fsLseek")
export declare function fsLseek(share: u32, file: u32, offset: i64, whence: u32): i64;

/** The file system's fuse_kstatfs (80 bytes) at `out`. */
@external("env", "fsStatfs")
export declare function fsStatfs(share: u32, node: u32, out: usize): i32;

/** Whole fuse_dirent entries of directory `file` from cookie `offset` into `buf`: bytes written, 0 at the end. */
@external("env", "fsReaddir")
export declare function fsReaddir(share: u32, file: u32, offset: u64, buf: usize, cap: u32): i32;

/** Value of xattr `name` into `buf`: its size (`cap` 0: only the size). */
@external("env", "fsGetxattr")
export declare function fsGetxattr(share: u32, node: u32, name: usize, nameLen: u32, buf: usize, cap: u32): i32;

/** NUL-separated xattr names into `buf`: their size (`cap` 0: only the size). */
@external("env", "fsListxattr")
export declare function fsListxattr(share: u32, node: u32, buf: usize, cap: u32): i32;

@external("env", "fsSetxattr")
export declare function fsSetxattr(
  share: u32, node: u32, name: usize, nameLen: u32, value: usize, valueLen: u32, flags: u32,
): i32;

@external("env", "fsRemovexattr")
export declare function fsRemovexattr(share: u32, node: u32, name: usize, nameLen: u32): i32;
