#include "vcpu_object.h"

#include "addon.h"
#include "js_values.h"
#include "kvm_abi.h"
#include "kvm_error.h"
#include "kvm_structs.h"
#include "state_blob.h"

#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>

namespace hako {

namespace {

constexpr uint16_t kDefaultFcw = 0x37f;      // x87 control word after FNINIT
constexpr uint32_t kDefaultMxcsr = 0x1f80;   // SSE exceptions masked

// KVM_GET_<name> into a T, returned as a Buffer.
template <typename T>
Napi::Value getBlob(Napi::Env env, const Vcpu& vcpu, unsigned long request, const char* ioctlName) {
  T state{};
  if (ioctl(vcpu.stateFd(env, ioctlName), request, &state) < 0) {
    throwKvmError(env, std::string("ioctl(") + ioctlName + ")", errno);
  }
  return blobToJs(env, state);
}

// KVM_SET_<name> from a Buffer of exactly sizeof(T) bytes, named `what` in errors.
template <typename T>
void setBlob(Napi::Env env, const Vcpu& vcpu, Napi::Value value, unsigned long request, const char* ioctlName,
             const char* what) {
  std::string syscall = std::string("ioctl(") + ioctlName + ")";
  T state = blobFromJs<T>(env, value, syscall, what);
  if (ioctl(vcpu.stateFd(env, ioctlName), request, &state) < 0) throwKvmError(env, syscall, errno);
}

}  // namespace

Napi::Function VcpuObject::Define(Napi::Env env) {
  return DefineClass(env, "NativeVcpu",
                     {
                         InstanceAccessor<&VcpuObject::Id>("id"),
                         InstanceMethod<&VcpuObject::GetRegs>("getRegs"),
                         InstanceMethod<&VcpuObject::SetRegs>("setRegs"),
                         InstanceMethod<&VcpuObject::GetSregs>("getSregs"),
                         InstanceMethod<&VcpuObject::SetSregs>("setSregs"),
                         InstanceMethod<&VcpuObject::ResetFpu>("resetFpu"),
                         InstanceMethod<&VcpuObject::SetCpuid>("setCpuid"),
                         InstanceMethod<&VcpuObject::GetMsrs>("getMsrs"),
                         InstanceMethod<&VcpuObject::SetMsrs>("setMsrs"),
                         InstanceMethod<&VcpuObject::GetLapic>("getLapic"),
                         InstanceMethod<&VcpuObject::SetLapic>("setLapic"),
                         InstanceMethod<&VcpuObject::GetMpState>("getMpState"),
                         InstanceMethod<&VcpuObject::SetMpState>("setMpState"),
                         InstanceMethod<&VcpuObject::GetVcpuEvents>("getVcpuEvents"),
                         InstanceMethod<&VcpuObject::SetVcpuEvents>("setVcpuEvents"),
                         InstanceMethod<&VcpuObject::GetFpu>("getFpu"),
                         InstanceMethod<&VcpuObject::SetFpu>("setFpu"),
                         InstanceMethod<&VcpuObject::GetXsave>("getXsave"),
                         InstanceMethod<&VcpuObject::SetXsave>("setXsave"),
                         InstanceMethod<&VcpuObject::GetXcrs>("getXcrs"),
                         InstanceMethod<&VcpuObject::SetXcrs>("setXcrs"),
                         InstanceMethod<&VcpuObject::GetDebugRegs>("getDebugRegs"),
                         InstanceMethod<&VcpuObject::SetDebugRegs>("setDebugRegs"),
                         InstanceMethod<&VcpuObject::GetTscKhz>("getTscKhz"),
                     });
}

Napi::Object VcpuObject::New(Napi::Env env, Napi::Object vm, Vcpu* vcpu) {
  return env.GetInstanceData<AddonData>()->vcpuClass.New({vm, Napi::External<Vcpu>::New(env, vcpu)});
}

VcpuObject::VcpuObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<VcpuObject>(info) {
  // Only New() can supply the External: scripts cannot construct vCPUs.
  if (info.Length() != 2 || !info[0].IsObject() || !info[1].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "NativeVcpu objects are created by Vm.createVcpu()");
  }
  vm_ = Napi::Persistent(info[0].As<Napi::Object>());
  vcpu_ = info[1].As<Napi::External<Vcpu>>().Data();
}

Napi::Value VcpuObject::Id(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), vcpu_->id()); }

Napi::Value VcpuObject::GetRegs(const Napi::CallbackInfo& info) {
  kvm_regs regs{};
  if (ioctl(vcpu_->stateFd(info.Env(), "KVM_GET_REGS"), KVM_GET_REGS, &regs) < 0) {
    throwKvmError(info.Env(), "ioctl(KVM_GET_REGS)", errno);
  }
  return regsToJs(info.Env(), regs);
}

void VcpuObject::SetRegs(const Napi::CallbackInfo& info) {
  kvm_regs regs = regsFromJs(info[0]);
  if (ioctl(vcpu_->stateFd(info.Env(), "KVM_SET_REGS"), KVM_SET_REGS, &regs) < 0) {
    throwKvmError(info.Env(), "ioctl(KVM_SET_REGS)", errno);
  }
}

Napi::Value VcpuObject::GetSregs(const Napi::CallbackInfo& info) {
  kvm_sregs sregs{};
  if (ioctl(vcpu_->stateFd(info.Env(), "KVM_GET_SREGS"), KVM_GET_SREGS, &sregs) < 0) {
    throwKvmError(info.Env(), "ioctl(KVM_GET_SREGS)", errno);
  }
  return sregsToJs(info.Env(), sregs);
}

void VcpuObject::SetSregs(const Napi::CallbackInfo& info) {
  kvm_sregs sregs = sregsFromJs(info[0]);
  if (ioctl(vcpu_->stateFd(info.Env(), "KVM_SET_SREGS"), KVM_SET_SREGS, &sregs) < 0) {
    throwKvmError(info.Env(), "ioctl(KVM_SET_SREGS)", errno);
  }
}

void VcpuObject::ResetFpu(const Napi::CallbackInfo& info) {
  kvm_fpu fpu{};
  fpu.fcw = kDefaultFcw;
  fpu.mxcsr = kDefaultMxcsr;
  if (ioctl(vcpu_->stateFd(info.Env(), "KVM_SET_FPU"), KVM_SET_FPU, &fpu) < 0) {
    throwKvmError(info.Env(), "ioctl(KVM_SET_FPU)", errno);
  }
}

void VcpuObject::SetCpuid(const Napi::CallbackInfo& info) {
  std::vector<kvm_cpuid_entry2> entries = cpuidFromJs(info[0]);
  KvmCpuid cpuid(entries.size());
  cpuid.header()->nent = static_cast<uint32_t>(entries.size());
  std::memcpy(cpuid.entries(), entries.data(), entries.size() * sizeof(kvm_cpuid_entry2));
  if (ioctl(vcpu_->stateFd(info.Env(), "KVM_SET_CPUID2"), kKvmSetCpuid2, cpuid.header()) < 0) {
    throwKvmError(info.Env(), "ioctl(KVM_SET_CPUID2)", errno, std::to_string(entries.size()) + " entries");
  }
}

Napi::Value VcpuObject::GetMsrs(const Napi::CallbackInfo& info) {
  std::vector<uint32_t> indices = msrIndicesFromJs(info[0]);
  KvmMsrs buffer(indices.size());
  buffer.header()->nmsrs = static_cast<uint32_t>(indices.size());
  for (size_t i = 0; i < indices.size(); i++) buffer.entries()[i].index = indices[i];
  int done = ioctl(vcpu_->stateFd(info.Env(), "KVM_GET_MSRS"), kKvmGetMsrs, buffer.header());
  if (done < 0) throwKvmError(info.Env(), "ioctl(KVM_GET_MSRS)", errno);
  // KVM stops at the first MSR it cannot read and returns how many it read.
  if (static_cast<size_t>(done) < indices.size()) {
    throwKvmError(info.Env(), "ioctl(KVM_GET_MSRS)", EINVAL, "MSR " + hex(indices[done]) + " cannot be read");
  }
  std::vector<MsrEntry> msrs(indices.size());
  for (size_t i = 0; i < indices.size(); i++) msrs[i] = {buffer.entries()[i].index, buffer.entries()[i].data};
  return msrsToJs(info.Env(), msrs);
}

void VcpuObject::SetMsrs(const Napi::CallbackInfo& info) {
  std::vector<MsrEntry> msrs = msrsFromJs(info[0]);
  KvmMsrs buffer(msrs.size());
  buffer.header()->nmsrs = static_cast<uint32_t>(msrs.size());
  for (size_t i = 0; i < msrs.size(); i++) {
    buffer.entries()[i].index = msrs[i].index;
    buffer.entries()[i].data = msrs[i].data;
  }
  int done = ioctl(vcpu_->stateFd(info.Env(), "KVM_SET_MSRS"), kKvmSetMsrs, buffer.header());
  if (done < 0) throwKvmError(info.Env(), "ioctl(KVM_SET_MSRS)", errno);
  if (static_cast<size_t>(done) < msrs.size()) {
    throwKvmError(info.Env(), "ioctl(KVM_SET_MSRS)", EINVAL,
                  "MSR " + hex(msrs[done].index) + " cannot be set to " + hex(msrs[done].data));
  }
}

Napi::Value VcpuObject::GetLapic(const Napi::CallbackInfo& info) {
  return getBlob<kvm_lapic_state>(info.Env(), *vcpu_, KVM_GET_LAPIC, "KVM_GET_LAPIC");
}

void VcpuObject::SetLapic(const Napi::CallbackInfo& info) {
  setBlob<kvm_lapic_state>(info.Env(), *vcpu_, info[0], KVM_SET_LAPIC, "KVM_SET_LAPIC", "lapic state");
}

Napi::Value VcpuObject::GetMpState(const Napi::CallbackInfo& info) {
  kvm_mp_state state{};
  if (ioctl(vcpu_->stateFd(info.Env(), "KVM_GET_MP_STATE"), KVM_GET_MP_STATE, &state) < 0) {
    throwKvmError(info.Env(), "ioctl(KVM_GET_MP_STATE)", errno);
  }
  return Napi::Number::New(info.Env(), state.mp_state);
}

void VcpuObject::SetMpState(const Napi::CallbackInfo& info) {
  kvm_mp_state state{static_cast<uint32_t>(toUint(info[0], "mp state", 0xffffffff))};
  if (ioctl(vcpu_->stateFd(info.Env(), "KVM_SET_MP_STATE"), KVM_SET_MP_STATE, &state) < 0) {
    throwKvmError(info.Env(), "ioctl(KVM_SET_MP_STATE)", errno, "state " + std::to_string(state.mp_state));
  }
}

Napi::Value VcpuObject::GetVcpuEvents(const Napi::CallbackInfo& info) {
  return getBlob<kvm_vcpu_events>(info.Env(), *vcpu_, KVM_GET_VCPU_EVENTS, "KVM_GET_VCPU_EVENTS");
}

void VcpuObject::SetVcpuEvents(const Napi::CallbackInfo& info) {
  setBlob<kvm_vcpu_events>(info.Env(), *vcpu_, info[0], KVM_SET_VCPU_EVENTS, "KVM_SET_VCPU_EVENTS", "vcpu events");
}

Napi::Value VcpuObject::GetFpu(const Napi::CallbackInfo& info) {
  return getBlob<kvm_fpu>(info.Env(), *vcpu_, KVM_GET_FPU, "KVM_GET_FPU");
}

void VcpuObject::SetFpu(const Napi::CallbackInfo& info) {
  setBlob<kvm_fpu>(info.Env(), *vcpu_, info[0], KVM_SET_FPU, "KVM_SET_FPU", "fpu state");
}

Napi::Value VcpuObject::GetXsave(const Napi::CallbackInfo& info) {
  return getBlob<KvmXsave>(info.Env(), *vcpu_, kKvmGetXsave, "KVM_GET_XSAVE");
}

void VcpuObject::SetXsave(const Napi::CallbackInfo& info) {
  setBlob<KvmXsave>(info.Env(), *vcpu_, info[0], kKvmSetXsave, "KVM_SET_XSAVE", "xsave state");
}

Napi::Value VcpuObject::GetXcrs(const Napi::CallbackInfo& info) {
  return getBlob<kvm_xcrs>(info.Env(), *vcpu_, KVM_GET_XCRS, "KVM_GET_XCRS");
}

void VcpuObject::SetXcrs(const Napi::CallbackInfo& info) {
  setBlob<kvm_xcrs>(info.Env(), *vcpu_, info[0], KVM_SET_XCRS, "KVM_SET_XCRS", "xcrs");
}

Napi::Value VcpuObject::GetDebugRegs(const Napi::CallbackInfo& info) {
  return getBlob<kvm_debugregs>(info.Env(), *vcpu_, KVM_GET_DEBUGREGS, "KVM_GET_DEBUGREGS");
}

void VcpuObject::SetDebugRegs(const Napi::CallbackInfo& info) {
  setBlob<kvm_debugregs>(info.Env(), *vcpu_, info[0], KVM_SET_DEBUGREGS, "KVM_SET_DEBUGREGS", "debug registers");
}

Napi::Value VcpuObject::GetTscKhz(const Napi::CallbackInfo& info) {
  int khz = ioctl(vcpu_->stateFd(info.Env(), "KVM_GET_TSC_KHZ"), KVM_GET_TSC_KHZ, 0);
  if (khz < 0) throwKvmError(info.Env(), "ioctl(KVM_GET_TSC_KHZ)", errno);
  return Napi::Number::New(info.Env(), khz);
}

}  // namespace hako
