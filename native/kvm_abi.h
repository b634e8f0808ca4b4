// The variable-length KVM structs, laid out as the kernel (C) sees them.
//
// Linux 6.1's <linux/kvm.h> (Debian 12) declares their trailing arrays with
// __DECLARE_FLEX_ARRAY, which in C++ adds a 1-byte empty struct: sizeof and
// the array offset of kvm_cpuid2, kvm_msrs, kvm_msr_list and kvm_xsave then differ from
// the kernel's, and so do the ioctl numbers derived from sizeof (the kernel
// answers EINVAL). C++ code must use these instead.
#pragma once

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace hako {

struct KvmCpuidHeader {  // struct kvm_cpuid2, followed by kvm_cpuid_entry2[nent]
  uint32_t nent;
  uint32_t padding;
};
struct KvmMsrsHeader {  // struct kvm_msrs, followed by kvm_msr_entry[nmsrs]
  uint32_t nmsrs;
  uint32_t pad;
};
struct KvmMsrListHeader {  // struct kvm_msr_list, followed by uint32_t[nmsrs]
  uint32_t nmsrs;
};

struct KvmXsave {  // struct kvm_xsave without its trailing `extra` (KVM_GET_XSAVE2 only)
  uint32_t region[1024];
};
static_assert(sizeof(KvmXsave) == 4096, "the kernel's KVM_GET_XSAVE size");

constexpr unsigned long kKvmGetMsrIndexList = _IOWR(KVMIO, 0x02, KvmMsrListHeader);
constexpr unsigned long kKvmGetSupportedCpuid = _IOWR(KVMIO, 0x05, KvmCpuidHeader);
constexpr unsigned long kKvmGetMsrs = _IOWR(KVMIO, 0x88, KvmMsrsHeader);
constexpr unsigned long kKvmSetMsrs = _IOW(KVMIO, 0x89, KvmMsrsHeader);
constexpr unsigned long kKvmSetCpuid2 = _IOW(KVMIO, 0x90, KvmCpuidHeader);
constexpr unsigned long kKvmGetXsave = _IOR(KVMIO, 0xa4, KvmXsave);
constexpr unsigned long kKvmSetXsave = _IOW(KVMIO, 0xa5, KvmXsave);

/** A header immediately followed by `count` entries, in one 8-byte-aligned buffer. */
template <typename Header, typename Entry>
class KvmArray {
  static_assert(sizeof(Header) % alignof(Entry) == 0, "entries follow the header without padding");

 public:
  explicit KvmArray(size_t count) : storage_((sizeof(Header) + count * sizeof(Entry) + 7) / 8) {}
  Header* header() { return reinterpret_cast<Header*>(storage_.data()); }
  Entry* entries() { return reinterpret_cast<Entry*>(reinterpret_cast<uint8_t*>(storage_.data()) + sizeof(Header)); }

 private:
  std::vector<uint64_t> storage_;
};

using KvmCpuid = KvmArray<KvmCpuidHeader, kvm_cpuid_entry2>;
using KvmMsrs = KvmArray<KvmMsrsHeader, kvm_msr_entry>;
using KvmMsrList = KvmArray<KvmMsrListHeader, uint32_t>;

}  // namespace hako
