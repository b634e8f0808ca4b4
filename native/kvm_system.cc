#include "kvm_system.h"

#include "kvm_abi.h"
#include "kvm_error.h"
#include "kvm_structs.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cerrno>

namespace hako {

namespace {

constexpr const char* kKvmPath = "/dev/kvm";

struct Capability {
  int id;
  const char* name;
};

// Everything the addon calls that is not in the base KVM API.
constexpr Capability kRequiredCapabilities[] = {
    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
    {KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"},
    {KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
    {KVM_CAP_PIT2, "KVM_CAP_PIT2"},
    {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
    {KVM_CAP_SET_IDENTITY_MAP_ADDR, "KVM_CAP_SET_IDENTITY_MAP_ADDR"},
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
    {KVM_CAP_GET_TSC_KHZ, "KVM_CAP_GET_TSC_KHZ"},
    {KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE"},
    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
};

int checkExtension(int kvmFd, int capability) {
  int r = ioctl(kvmFd, KVM_CHECK_EXTENSION, capability);
  return r < 0 ? 0 : r;
}

}  // namespace

UniqueFd openKvm(Napi::Env env) {
  UniqueFd kvm(open(kKvmPath, O_RDWR | O_CLOEXEC));
  if (!kvm.valid()) {
    int err = errno;
    std::string why;
    if (err == ENOENT) why = "the device node does not exist: load the kvm module, or pass /dev/kvm into this container";
    if (err == EACCES) why = "no permission to open it: run as a member of the group that owns /dev/kvm (usually kvm)";
    throwKvmError(env, std::string("open(") + kKvmPath + ")", err, why);
  }
  int version = ioctl(kvm.get(), KVM_GET_API_VERSION, 0);
  if (version < 0) throwKvmError(env, "ioctl(KVM_GET_API_VERSION)", errno);
  if (version != KVM_API_VERSION) {
    throwKvmError(env, "ioctl(KVM_GET_API_VERSION)", ENOTSUP,
                  "the host's KVM API version is " + std::to_string(version) + ", expected " +
                      std::to_string(KVM_API_VERSION));
  }
  for (const Capability& cap : kRequiredCapabilities) {
    if (checkExtension(kvm.get(), cap.id) <= 0) {
      throwKvmError(env, std::string("ioctl(KVM_CHECK_EXTENSION, ") + cap.name + ")", ENOTSUP,
                    std::string("the host's KVM lacks the required capability ") + cap.name);
    }
  }
  return kvm;
}

size_t vcpuMmapSize(Napi::Env env, int kvmFd) {
  int size = ioctl(kvmFd, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (size < 0) throwKvmError(env, "ioctl(KVM_GET_VCPU_MMAP_SIZE)", errno);
  if (static_cast<size_t>(size) < sizeof(kvm_run)) {
    throwKvmError(env, "ioctl(KVM_GET_VCPU_MMAP_SIZE)", EINVAL,
                  "the kvm_run area is " + std::to_string(size) + " bytes, smaller than struct kvm_run");
  }
  return static_cast<size_t>(size);
}

Napi::Value KvmInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UniqueFd kvm = openKvm(env);
  // KVM_CAP_NR_VCPUS is the recommended maximum; KVM_CAP_MAX_VCPUS the hard one.
  // Old kernels report 0 for either: the API documents 4 as the fallback.
  int recommended = checkExtension(kvm.get(), KVM_CAP_NR_VCPUS);
  if (recommended <= 0) recommended = 4;
  int max = checkExtension(kvm.get(), KVM_CAP_MAX_VCPUS);
  if (max <= 0) max = recommended;
  Napi::Object result = Napi::Object::New(env);
  result.Set("apiVersion", KVM_API_VERSION);
  result.Set("maxVcpus", max);
  result.Set("recommendedVcpus", recommended);
  // Optional state for snapshots: without them, KVM_GET_FPU and no XCRs.
  result.Set("xsave", checkExtension(kvm.get(), KVM_CAP_XSAVE) > 0);
  result.Set("xcrs", checkExtension(kvm.get(), KVM_CAP_XCRS) > 0);
  return result;
}

Napi::Value GetSupportedCpuid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UniqueFd kvm = openKvm(env);
  // The kernel answers E2BIG until the buffer is large enough.
  for (uint32_t capacity = 128;; capacity *= 2) {
    KvmCpuid cpuid(capacity);
    cpuid.header()->nent = capacity;
    if (ioctl(kvm.get(), kKvmGetSupportedCpuid, cpuid.header()) == 0) {
      return cpuidToJs(env, cpuid.entries(), cpuid.header()->nent);
    }
    if (errno != E2BIG || capacity >= 65536) throwKvmError(env, "ioctl(KVM_GET_SUPPORTED_CPUID)", errno);
  }
}

Napi::Value GetMsrIndexList(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UniqueFd kvm = openKvm(env);
  // The first call, with room for nothing, fails with E2BIG and reports the count.
  KvmMsrListHeader probe{};
  if (ioctl(kvm.get(), kKvmGetMsrIndexList, &probe) < 0 && errno != E2BIG) {
    throwKvmError(env, "ioctl(KVM_GET_MSR_INDEX_LIST)", errno);
  }
  KvmMsrList list(probe.nmsrs);
  list.header()->nmsrs = probe.nmsrs;
  if (ioctl(kvm.get(), kKvmGetMsrIndexList, list.header()) < 0) {
    throwKvmError(env, "ioctl(KVM_GET_MSR_INDEX_LIST)", errno);
  }
  Napi::Array result = Napi::Array::New(env, list.header()->nmsrs);
  for (uint32_t i = 0; i < list.header()->nmsrs; i++) result.Set(i, list.entries()[i]);
  return result;
}

}  // namespace hako
