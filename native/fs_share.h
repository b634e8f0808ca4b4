// The syscall side of the in-VMM virtio-fs server (host/virtiofs/backend.ts;
// contract: the fs* imports of assembly/env.ts). A share is a host directory
// opened once (O_PATH, openat2 RESOLVE_NO_MAGICLINKS) plus a table of u32
// handles: nodes (O_PATH fds, node 0 = the root) and open files. The device
// model names only handles it was given, and every operation is one *at call
// relative to a node fd with a single path component, never following a
// symlink: no guest request can resolve a path, so nothing outside the share
// is reachable. A node is re-opened (through /proc/self/fd) only once fstat
// says it is a regular file or a directory: never a FIFO or device.
//
// The op functions return what the guest's request gets: >= 0, or -errno (a
// bad handle is -EBADF, a pointer outside the memory -EFAULT); only arguments
// of the wrong type throw. fsShareOpen and fsShareClose throw KvmErrors.
// Pointers are addresses in `memory` (the Wasm memory's current buffer).
#pragma once

#include <napi.h>

namespace hako {

/** fsShareOpen(rootPath, readOnly): a new share id. */
Napi::Value FsShareOpen(const Napi::CallbackInfo& info);
/** fsShareClose(share): closes the root and every node and file of the share. */
Napi::Value FsShareClose(const Napi::CallbackInfo& info);

/** fsLookup(share, memory, parent, name, nameLen, stat): new node handle; the stat record written at `stat`. */
Napi::Value FsLookup(const Napi::CallbackInfo& info);
/** fsForget(share, node): closes a node (never node 0). */
Napi::Value FsForget(const Napi::CallbackInfo& info);
/** fsGetattr(share, memory, node, stat). */
Napi::Value FsGetattr(const Napi::CallbackInfo& info);
/** fsSetattr(share, memory, node, file (-1: none), attr, stat). */
Napi::Value FsSetattr(const Napi::CallbackInfo& info);
/** fsReadlink(share, memory, node, buf, cap): bytes of the target. */
Napi::Value FsReadlink(const Napi::CallbackInfo& info);
/** fsOpen(share, node, flags): new file handle. */
Napi::Value FsOpen(const Napi::CallbackInfo& info);
/** fsRelease(share, file). */
Napi::Value FsRelease(const Napi::CallbackInfo& info);
/** fsCreate(share, memory, parent, name, nameLen, mode, exclusive, uid, gid, stat): new node handle. */
Napi::Value FsCreate(const Napi::CallbackInfo& info);
/** fsMknod(share, memory, parent, name, nameLen, mode, rdev, uid, gid, stat). */
Napi::Value FsMknod(const Napi::CallbackInfo& info);
/** fsMkdir(share, memory, parent, name, nameLen, mode, uid, gid, stat). */
Napi::Value FsMkdir(const Napi::CallbackInfo& info);
/** fsSymlink(share, memory, parent, name, nameLen, target, targetLen, uid, gid, stat). */
Napi::Value FsSymlink(const Napi::CallbackInfo& info);
/** fsLink(share, memory, node, newParent, name, nameLen, stat). */
Napi::Value FsLink(const Napi::CallbackInfo& info);
/** fsUnlink(share, memory, parent, name, nameLen, directory). */
Napi::Value FsUnlink(const Napi::CallbackInfo& info);
/** fsRename(share, memory, oldParent, oldName, oldLen, newParent, newName, newLen, flags). */
Napi::Value FsRename(const Napi::CallbackInfo& info);
/** fsRead(share, memory, file, offset: bigint, iov, count): preadv into memory. */
Napi::Value FsRead(const Napi::CallbackInfo& info);
/** fsWrite(share, memory, file, offset: bigint, iov, count): pwritev from memory. */
Napi::Value FsWrite(const Napi::CallbackInfo& info);
/** fsFsync(share, file, datasync). */
Napi::Value FsFsync(const Napi::CallbackInfo& info);
/** fsFallocate(share, file, mode, offset: bigint, length: bigint). */
Napi::Value FsFallocate(const Napi::CallbackInfo& info);
/** fsLseek(share, file, offset: bigint, whence): the new offset or -errno, a bigint. */
Napi::Value FsLseek(const Napi::CallbackInfo& info);
/** fsStatfs(share, memory, node, out): fuse_kstatfs at `out`. */
Napi::Value FsStatfs(const Napi::CallbackInfo& info);
/** fsReaddir(share, memory, file, offset: bigint, buf, cap): bytes of fuse_dirent entries, 0 at the end. */
Napi::Value FsReaddir(const Napi::CallbackInfo& info);
/** fsGetxattr(share, memory, node, name, nameLen, buf, cap). */
Napi::Value FsGetxattr(const Napi::CallbackInfo& info);
/** fsListxattr(share, memory, node, buf, cap). */
Napi::Value FsListxattr(const Napi::CallbackInfo& info);
/** fsSetxattr(share, memory, node, name, nameLen, value, valueLen, flags). */
Napi::Value FsSetxattr(const Napi::CallbackInfo& info);
/** fsRemovexattr(share, memory, node, name, nameLen). */
Napi::Value FsRemovexattr(const Napi::CallbackInfo& info);

}  // namespace hako
