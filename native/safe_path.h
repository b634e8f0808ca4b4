// Path resolution confined to a root directory (host/fs/safe-path.ts): every
// path that comes from a container spec, an image, a mount request or a guest
// is opened with openat2(2) relative to the root's fd, so `..`, absolute
// symlinks and symlinks swapped in mid-resolution (CVE-2021-30465) cannot reach
// outside it. The *at calls here take one name relative to a directory fd that
// was itself opened that way. Every fd is close-on-exec; failures throw a
// KvmError naming the call, the errno and the path.
#pragma once

#include <napi.h>

#include <fcntl.h>  // O_PATH, exported as a constant: Node's fs.constants lacks it

namespace hako {

/**
 * openAt(dirFd, path, flags, mode, resolve): openat2(2) with O_CLOEXEC and
 * RESOLVE_NO_MAGICLINKS added, `resolve` being 'in-root' (RESOLVE_IN_ROOT:
 * `..` and absolute links stop at dirFd, like chroot), 'beneath'
 * (RESOLVE_BENEATH: leaving dirFd fails with EXDEV) or 'no-symlinks' (beneath,
 * and any symlink fails with ELOOP). `mode` only counts with O_CREAT or O_TMPFILE.
 */
Napi::Value OpenAt(const Napi::CallbackInfo& info);
/** mkdirAt(dirFd, name, mode): true if made, false if `name` exists (whatever it is). */
Napi::Value MkdirAt(const Napi::CallbackInfo& info);
/** unlinkAt(dirFd, name, isDirectory): unlinkat(2), AT_REMOVEDIR for a directory. */
Napi::Value UnlinkAt(const Napi::CallbackInfo& info);
/** renameAt(oldDirFd, oldName, newDirFd, newName, noReplace): renameat2(2), RENAME_NOREPLACE if asked. */
Napi::Value RenameAt(const Napi::CallbackInfo& info);
/** readlinkAt(fd): the target of the symlink `fd` was opened on (O_PATH | O_NOFOLLOW). */
Napi::Value ReadlinkAt(const Napi::CallbackInfo& info);

}  // namespace hako
