// Entry point: the exports of NativeAddon in host/native.ts.
#include "addon.h"

#include "fd_poll.h"
#include "fd_watch.h"
#include "file_lock.h"
#include "fs_share.h"
#include "io_engine.h"
#include "kvm_system.h"
#include "memory_file.h"
#include "mount.h"
#include "random.h"
#include "safe_path.h"
#include "socket_io.h"
#include "unix_socket.h"
#include "vcpu_object.h"
#include "vm.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using namespace hako;
  auto* data = new AddonData();
  data->vcpuClass = Napi::Persistent(VcpuObject::Define(env));
  env.SetInstanceData(data);
  exports.Set("kvmInfo", Napi::Function::New(env, KvmInfo, "kvmInfo"));
  exports.Set("getSupportedCpuid", Napi::Function::New(env, GetSupportedCpuid, "getSupportedCpuid"));
  exports.Set("getMsrIndexList", Napi::Function::New(env, GetMsrIndexList, "getMsrIndexList"));
  exports.Set("mapMemoryFile", Napi::Function::New(env, MapMemoryFile, "mapMemoryFile"));
  exports.Set("Vm", Vm::Define(env));
  exports.Set("watchFd", Napi::Function::New(env, WatchFd, "watchFd"));
  exports.Set("getRandom", Napi::Function::New(env, GetRandom, "getRandom"));
  exports.Set("lockFile", Napi::Function::New(env, LockFile, "lockFile"));
  exports.Set("O_PATH", Napi::Number::New(env, O_PATH));
  exports.Set("openAt", Napi::Function::New(env, OpenAt, "openAt"));
  exports.Set("mkdirAt", Napi::Function::New(env, MkdirAt, "mkdirAt"));
  exports.Set("unlinkAt", Napi::Function::New(env, UnlinkAt, "unlinkAt"));
  exports.Set("renameAt", Napi::Function::New(env, RenameAt, "renameAt"));
  exports.Set("readlinkAt", Napi::Function::New(env, ReadlinkAt, "readlinkAt"));
  exports.Set("IoEngine", IoEngine::Define(env));
  exports.Set("pollFd", Napi::Function::New(env, PollFd, "pollFd"));
  exports.Set("unixListen", Napi::Function::New(env, UnixListen, "unixListen"));
  exports.Set("unixAccept", Napi::Function::New(env, UnixAccept, "unixAccept"));
  exports.Set("unixConnect", Napi::Function::New(env, UnixConnect, "unixConnect"));
  exports.Set("shutdownSocket", Napi::Function::New(env, ShutdownSocket, "shutdownSocket"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
  exports.Set("socketReadv", Napi::Function::New(env, SocketReadv, "socketReadv"));
  exports.Set("socketWritev", Napi::Function::New(env, SocketWritev, "socketWritev"));
  exports.Set("bindMount", Napi::Function::New(env, BindMount, "bindMount"));
  exports.Set("mountFs", Napi::Function::New(env, MountFs, "mountFs"));
  exports.Set("unmount", Napi::Function::New(env, Unmount, "unmount"));
  exports.Set("fsShareOpen", Napi::Function::New(env, FsShareOpen, "fsShareOpen"));
  exports.Set("fsShareClose", Napi::Function::New(env, FsShareClose, "fsShareClose"));
  exports.Set("fsLookup", Napi::Function::New(env, FsLookup, "fsLookup"));
  exports.Set("fsForget", Napi::Function::New(env, FsForget, "fsForget"));
  exports.Set("fsGetattr", Napi::Function::New(env, FsGetattr, "fsGetattr"));
  exports.Set("fsSetattr", Napi::Function::New(env, FsSetattr, "fsSetattr"));
  exports.Set("fsReadlink", Napi::Function::New(env, FsReadlink, "fsReadlink"));
  exports.Set("fsOpen", Napi::Function::New(env, FsOpen, "fsOpen"));
  exports.Set("fsRelease", Napi::Function::New(env, FsRelease, "fsRelease"));
  exports.Set("fsCreate", Napi::Function::New(env, FsCreate, "fsCreate"));
  exports.Set("fsMknod", Napi::Function::New(env, FsMknod, "fsMknod"));
  exports.Set("fsMkdir", Napi::Function::New(env, FsMkdir, "fsMkdir"));
  exports.Set("fsSymlink", Napi::Function::New(env, FsSymlink, "fsSymlink"));
  exports.Set("fsLink", Napi::Function::New(env, FsLink, "fsLink"));
  exports.Set("fsUnlink", Napi::Function::New(env, FsUnlink, "fsUnlink"));
  exports.Set("fsRename", Napi::Function::New(env, FsRename, "fsRename"));
  exports.Set("fsRead", Napi::Function::New(env, FsRead, "fsRead"));
  exports.Set("fsWrite", Napi::Function::New(env, FsWrite, "fsWrite"));
  exports.Set("fsFsync", Napi::Function::New(env, FsFsync, "fsFsync"));
  exports.Set("fsFallocate", Napi::Function::New(env, FsFallocate, "fsFallocate"));
  exports.Set("fsLseek", Napi::Function::New(env, FsLseek, "fsLseek"));
  exports.Set("fsStatfs", Napi::Function::New(env, FsStatfs, "fsStatfs"));
  exports.Set("fsReaddir", Napi::Function::New(env, FsReaddir, "fsReaddir"));
  exports.Set("fsGetxattr", Napi::Function::New(env, FsGetxattr, "fsGetxattr"));
  exports.Set("fsListxattr", Napi::Function::New(env, FsListxattr, "fsListxattr"));
  exports.Set("fsSetxattr", Napi::Function::New(env, FsSetxattr, "fsSetxattr"));
  exports.Set("fsRemovexattr", Napi::Function::New(env, FsRemovexattr, "fsRemovexattr"));
  return exports;
}

}  // namespace

NODE_API_MODULE(hako, Init)
