// /dev/kvm: opening it with the checks hako depends on, and the system ioctls
// (API version, capabilities, supported CPUID, MSR list).
#pragma once

#include "unique_fd.h"

#include <napi.h>

namespace hako {

/**
 * Opens /dev/kvm and verifies the API version and every capability hako uses;
 * throws a KvmError naming the check that failed.
 */
UniqueFd openKvm(Napi::Env env);

/** Size of a vCPU's kvm_run mapping. */
size_t vcpuMmapSize(Napi::Env env, int kvmFd);

// JS exports (see NativeAddon in host/native.ts).
Napi::Value KvmInfo(const Napi::CallbackInfo& info);
Napi::Value GetSupportedCpuid(const Napi::CallbackInfo& info);
Napi::Value GetMsrIndexList(const Napi::CallbackInfo& info);

}  // namespace hako
