// The JS face of a vCPU (NativeVcpu in host/native.ts): state accessors. The
// Vcpu itself belongs to its Vm; this object keeps the Vm alive.
#pragma once

#include "vcpu.h"

#include <napi.h>

namespace hako {

class VcpuObject : public Napi::ObjectWrap<VcpuObject> {
 public:
  static Napi::Function Define(Napi::Env env);
  /** Wraps `vcpu`, owned by the Vm object `vm`. */
  static Napi::Object New(Napi::Env env, Napi::Object vm, Vcpu* vcpu);

  explicit VcpuObject(const Napi::CallbackInfo& info);

 private:
  Napi::Value Id(const Napi::CallbackInfo& info);
  Napi::Value GetRegs(const Napi::CallbackInfo& info);
  void SetRegs(const Napi::CallbackInfo& info);
  Napi::Value GetSregs(const Napi::CallbackInfo& info);
  void SetSregs(const Napi::CallbackInfo& info);
  void ResetFpu(const Napi::CallbackInfo& info);
  void SetCpuid(const Napi::CallbackInfo& info);
  Napi::Value GetMsrs(const Napi::CallbackInfo& info);
  void SetMsrs(const Napi::CallbackInfo& info);
  Napi::Value GetLapic(const Napi::CallbackInfo& info);
  void SetLapic(const Napi::CallbackInfo& info);
  Napi::Value GetMpState(const Napi::CallbackInfo& info);
  void SetMpState(const Napi::CallbackInfo& info);
  Napi::Value GetVcpuEvents(const Napi::CallbackInfo& info);
  void SetVcpuEvents(const Napi::CallbackInfo& info);
  Napi::Value GetFpu(const Napi::CallbackInfo& info);
  void SetFpu(const Napi::CallbackInfo& info);
  Napi::Value GetXsave(const Napi::CallbackInfo& info);
  void SetXsave(const Napi::CallbackInfo& info);
  Napi::Value GetXcrs(const Napi::CallbackInfo& info);
  void SetXcrs(const Napi::CallbackInfo& info);
  Napi::Value GetDebugRegs(const Napi::CallbackInfo& info);
  void SetDebugRegs(const Napi::CallbackInfo& info);
  Napi::Value GetTscKhz(const Napi::CallbackInfo& info);

  Napi::ObjectReference vm_;
  Vcpu* vcpu_ = nullptr;
};

}  // namespace hako
