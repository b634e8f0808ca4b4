// Converts KVM structs to and from the JS objects described in host/native.ts.
// 64-bit registers are BigInts so that no bit is lost.
#pragma once

#include <linux/kvm.h>
#include <napi.h>

#include <cstdint>
#include <vector>

namespace hako {

Napi::Object regsToJs(Napi::Env env, const kvm_regs& regs);
kvm_regs regsFromJs(Napi::Value value);

Napi::Object sregsToJs(Napi::Env env, const kvm_sregs& sregs);
kvm_sregs sregsFromJs(Napi::Value value);

Napi::Array cpuidToJs(Napi::Env env, const kvm_cpuid_entry2* entries, uint32_t count);
std::vector<kvm_cpuid_entry2> cpuidFromJs(Napi::Value value);

struct MsrEntry {
  uint32_t index;
  uint64_t data;
};
Napi::Array msrsToJs(Napi::Env env, const std::vector<MsrEntry>& msrs);
std::vector<MsrEntry> msrsFromJs(Napi::Value value);
std::vector<uint32_t> msrIndicesFromJs(Napi::Value value);

}  // namespace hako
