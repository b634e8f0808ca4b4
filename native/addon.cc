// Entry point: the exports of NativeAddon in host/native.ts.
#include "addon.h"

#include "fd_watch.h"
#include "file_lock.h"
#include "io_engine.h"
#include "kvm_system.h"
#include "memory_file.h"
#include "random.h"
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
  exports.Set("IoEngine", IoEngine::Define(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(hako, Init)
