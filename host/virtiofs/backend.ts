// The host side of a VM's virtio-fs devices: its shared directories, opened
// through the native addon (native/fs_share.h), and the fs* imports the
// device model (assembly/virtio/fs/) calls. The model decides everything
// about the FUSE protocol; this file only maps the ids the model knows its
// shares by (0, 1, ... in device order, stable across a snapshot) to native
// shares and hands the current Wasm memory to every call.
import { isKvmError, type NativeAddon } from '../native.js';
import { HakoError } from '../errors.js';
import type { FsCallbacks } from '../wasm/devices.js';

/** What a share id with no directory behind it answers (a restored VM given no path for that slot). */
const ENODEV = -19;

export class FsShares {
  /** Native share ids by the device model's share id. */
  private readonly natives = new Map<number, number>();

  /** What the device models call, synchronously; none of them throws into it. */
  readonly callbacks: FsCallbacks;

  /** `memory` returns the Wasm memory's current buffer (it changes when the memory grows). */
  constructor(private readonly addon: NativeAddon, memory: () => ArrayBuffer) {
    const { natives } = this;
    // Each import: the native op of the share named by its first argument, with the memory when it takes pointers.
    const op = <A extends unknown[], R>(call: (native: number, ...args: A) => R, absent: R) =>
      (share: number, ...args: A): R => {
        const native = natives.get(share);
        return native === undefined ? absent : call(native, ...args);
      };
    const a = addon;
    this.callbacks = {
      lookup: op((s, parent, name, nameLen, stat) => a.fsLookup(s, memory(), parent, name, nameLen, stat), ENODEV),
      forget: op((s, node: number) => a.fsForget(s, node), undefined),
      getattr: op((s, node, stat) => a.fsGetattr(s, memory(), node, stat), ENODEV),
      setattr: op((s, node, file, attr, stat) => a.fsSetattr(s, memory(), node, file, attr, stat), ENODEV),
      readlink: op((s, node, buf, cap) => a.fsReadlink(s, memory(), node, buf, cap), ENODEV),
      open: op((s, node: number, flags: number) => a.fsOpen(s, node, flags), ENODEV),
      release: op((s, file: number) => a.fsRelease(s, file), undefined),
      create: op((s, parent, name, nameLen, mode, exclusive: boolean, uid, gid, stat) =>
        a.fsCreate(s, memory(), parent, name, nameLen, mode, exclusive, uid, gid, stat), ENODEV),
      mknod: op((s, parent, name, nameLen, mode, rdev, uid, gid, stat) =>
        a.fsMknod(s, memory(), parent, name, nameLen, mode, rdev, uid, gid, stat), ENODEV),
      mkdir: op((s, parent, name, nameLen, mode, uid, gid, stat) =>
        a.fsMkdir(s, memory(), parent, name, nameLen, mode, uid, gid, stat), ENODEV),
      symlink: op((s, parent, name, nameLen, target, targetLen, uid, gid, stat) =>
        a.fsSymlink(s, memory(), parent, name, nameLen, target, targetLen, uid, gid, stat), ENODEV),
      link: op((s, node, newParent, name, nameLen, stat) => a.fsLink(s, memory(), node, newParent, name, nameLen, stat), ENODEV),
      unlink: op((s, parent, name, nameLen, directory: boolean) => a.fsUnlink(s, memory(), parent, name, nameLen, directory), ENODEV),
      rename: op((s, oldParent, oldName, oldLen, newParent, newName, newLen, flags) =>
        a.fsRename(s, memory(), oldParent, oldName, oldLen, newParent, newName, newLen, flags), ENODEV),
      read: op((s, file, offset: bigint, iov, count) => a.fsRead(s, memory(), file, offset, iov, count), ENODEV),
      write: op((s, file, offset: bigint, iov, count) => a.fsWrite(s, memory(), file, offset, iov, count), ENODEV),
      fsync: op((s, file: number, datasync: boolean) => a.fsFsync(s, file, datasync), ENODEV),
      fallocate: op((s, file: number, mode: number, offset: bigint, length: bigint) => a.fsFallocate(s, file, mode, offset, length), ENODEV),
      lseek: op((s, file: number, offset: bigint, whence: number) => a.fsLseek(s, file, offset, whence), BigInt(ENODEV)),
      statfs: op((s, node, out) => a.fsStatfs(s, memory(), node, out), ENODEV),
      readdir: op((s, file, offset: bigint, buf, cap) => a.fsReaddir(s, memory(), file, offset, buf, cap), ENODEV),
      getxattr: op((s, node, name, nameLen, buf, cap) => a.fsGetxattr(s, memory(), node, name, nameLen, buf, cap), ENODEV),
      listxattr: op((s, node, buf, cap) => a.fsListxattr(s, memory(), node, buf, cap), ENODEV),
      setxattr: op((s, node, name, nameLen, value, valueLen, flags) =>
        a.fsSetxattr(s, memory(), node, name, nameLen, value, valueLen, flags), ENODEV),
      removexattr: op((s, node, name, nameLen) => a.fsRemovexattr(s, memory(), node, name, nameLen), ENODEV),
    };
  }

  /** Opens directory `path` as share `id` (the device model's); a missing or unusable directory is INVALID_ARGUMENT. */
  open(id: number, path: string, readOnly: boolean): void {
    if (this.natives.has(id)) throw new Error(`virtio-fs share ${id} is open already`);
    try {
      this.natives.set(id, this.addon.fsShareOpen(path, readOnly));
    } catch (e) {
      if (!isKvmError(e)) throw e;
      throw new HakoError('INVALID_ARGUMENT', `cannot share directory ${path}: ${e.message}`, { cause: e });
    }
  }

  /** Closes every share and every file and node the guest held in them (idempotent). */
  close(): void {
    for (const native of this.natives.values()) this.addon.fsShareClose(native);
    this.natives.clear();
  }
}
