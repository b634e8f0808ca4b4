// Bind mounts of host directories into a sandbox's shared directory (the
// virtio-fs share, host/sandbox/shares.ts): a container's root file system
// and its volumes; and the containerd shim's rootfs mounts. Thin wrappers; failures throw a KvmError naming the call,
// the errno and both paths.
#pragma once

#include <napi.h>

namespace hako {

/**
 * bindMount(source, target, readOnly): mount(2) MS_BIND of the directory
 * `source` on `target` (not recursive: submounts of `source` stay out), then a
 * remount adding MS_NOSUID | MS_NODEV (and MS_RDONLY if `readOnly`): the VMM
 * never runs or opens device nodes from a share.
 */
Napi::Value BindMount(const Napi::CallbackInfo& info);
/**
 * mountFs(source, target, fstype, flags, data): mount(2) of a file system as
 * containerd describes it (the shim's overlay snapshots). `flags` are names of
 * MS_* flags without the prefix, lower case ("rdonly", "nosuid", "bind",
 * "rec", ...); an unknown name throws a TypeError rather than being ignored.
 */
Napi::Value MountFs(const Napi::CallbackInfo& info);
/** unmount(target): umount2(2) with MNT_DETACH | UMOUNT_NOFOLLOW. */
Napi::Value Unmount(const Napi::CallbackInfo& info);

}  // namespace hako
