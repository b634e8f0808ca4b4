#include "vm.h"

#include "js_values.h"
#include "kvm_error.h"
#include "kvm_system.h"
#include "memory_file.h"
#include "state_blob.h"
#include "vcpu_object.h"

#include <linux/kvm.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace hako {

namespace {

// Three pages below the 4 GiB boundary that the guest never uses as RAM: KVM
// needs them on Intel for the real-mode TSS and the identity-mapped page table.
constexpr uint64_t kTssAddress = 0xfffbd000;
constexpr uint64_t kIdentityMapAddress = 0xfffbc000;

constexpr uint64_t kMaxSafeInteger = (uint64_t{1} << 53) - 1;

// kvm_irqchip.chip_id values.
constexpr uint32_t kLastIrqchip = KVM_IRQCHIP_IOAPIC;

}  // namespace

// ---- MemorySlot ----

Vm::MemorySlot::MemorySlot(MemorySlot&& other) noexcept
    : owner(std::move(other.owner)),
      mapping(std::exchange(other.mapping, nullptr)),
      mappingSize(std::exchange(other.mappingSize, 0)) {}

Vm::MemorySlot::~MemorySlot() {
  if (mapping != nullptr) munmap(mapping, mappingSize);
}

// ---- Vm ----

Napi::Function Vm::Define(Napi::Env env) {
  return DefineClass(env, "Vm",
                     {
                         InstanceMethod<&Vm::SetMemory>("setMemory"),
                         InstanceMethod<&Vm::AddAnonymousMemory>("addAnonymousMemory"),
                         InstanceMethod<&Vm::AddFileMemory>("addFileMemory"),
                         InstanceMethod<&Vm::WriteSlotToFile>("writeSlotToFile"),
                         InstanceMethod<&Vm::CreateVcpu>("createVcpu"),
                         InstanceMethod<&Vm::SetIrqLine>("setIrqLine"),
                         InstanceMethod<&Vm::CreateEventfd>("createEventfd"),
                         InstanceMethod<&Vm::AddIoeventfd>("addIoeventfd"),
                         InstanceMethod<&Vm::AddIrqfd>("addIrqfd"),
                         InstanceMethod<&Vm::SignalEventfd>("signalEventfd"),
                         InstanceMethod<&Vm::GetIrqchip>("getIrqchip"),
                         InstanceMethod<&Vm::SetIrqchip>("setIrqchip"),
                         InstanceMethod<&Vm::GetPit2>("getPit2"),
                         InstanceMethod<&Vm::SetPit2>("setPit2"),
                         InstanceMethod<&Vm::GetClock>("getClock"),
                         InstanceMethod<&Vm::SetClock>("setClock"),
                         InstanceMethod<&Vm::Run>("run"),
                         InstanceMethod<&Vm::Stop>("stop"),
                         InstanceMethod<&Vm::Close>("close"),
                     });
}

Vm::Vm(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Vm>(info) {
  Napi::Env env = info.Env();
  UniqueFd kvm = openKvm(env);
  runSize_ = vcpuMmapSize(env, kvm.get());
  int fd;
  // KVM_CREATE_VM may fail with EINTR while a signal is pending.
  do {
    fd = ioctl(kvm.get(), KVM_CREATE_VM, 0);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) throwKvmError(env, "ioctl(KVM_CREATE_VM)", errno);
  vmFd_.reset(fd);

  if (ioctl(fd, KVM_SET_TSS_ADDR, static_cast<unsigned long>(kTssAddress)) < 0) {
    throwKvmError(env, "ioctl(KVM_SET_TSS_ADDR)", errno);
  }
  uint64_t identityMap = kIdentityMapAddress;
  if (ioctl(fd, KVM_SET_IDENTITY_MAP_ADDR, &identityMap) < 0) {
    throwKvmError(env, "ioctl(KVM_SET_IDENTITY_MAP_ADDR)", errno);
  }
  if (ioctl(fd, KVM_CREATE_IRQCHIP, 0) < 0) throwKvmError(env, "ioctl(KVM_CREATE_IRQCHIP)", errno);
  // The dummy speaker answers port 0x61 in the kernel: Linux reads it while
  // calibrating against the PIT, and there is no speaker to emulate.
  kvm_pit_config pit{};
  pit.flags = KVM_PIT_SPEAKER_DUMMY;
  if (ioctl(fd, KVM_CREATE_PIT2, &pit) < 0) throwKvmError(env, "ioctl(KVM_CREATE_PIT2)", errno);
}

Vm::~Vm() { close(); }

int Vm::vmFd(Napi::Env env, const std::string& syscall) const {
  if (closed_) throwKvmError(env, syscall, EBADF, "the VM is closed");
  return vmFd_.get();
}

void Vm::registerSlot(Napi::Env env, uint32_t slot, uint64_t guestPhysAddr, void* host, uint64_t size,
                      MemorySlot holder) {
  const std::string syscall = "ioctl(KVM_SET_USER_MEMORY_REGION)";
  int fd = vmFd(env, syscall);
  if (slots_.count(slot) != 0) throwKvmError(env, syscall, EEXIST, "slot " + std::to_string(slot) + " is in use");
  kvm_userspace_memory_region region{};
  region.slot = slot;
  region.guest_phys_addr = guestPhysAddr;
  region.memory_size = size;
  region.userspace_addr = reinterpret_cast<uint64_t>(host);
  if (ioctl(fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
    int err = errno;
    std::string what = "slot " + std::to_string(slot) + ", guest address " + hex(guestPhysAddr) + ", size " + hex(size);
    if (err == EINVAL) what += " (addresses and size must be 4 KiB-aligned, the slot below KVM's limit)";
    if (err == EEXIST) what += " (overlaps another slot)";
    throwKvmError(env, syscall, err, what);
  }
  // Best effort, as for memory files: KSM may merge identical guest pages
  // across VMs; a kernel without CONFIG_KSM refuses and nothing changes.
  madvise(host, size, MADV_MERGEABLE);
  slots_.emplace(slot, std::move(holder));
}

void Vm::SetMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t slot = static_cast<uint32_t>(toUint(info[0], "slot", 0xffff));
  uint64_t guestPhysAddr = toUint(info[1], "guestPhysAddr", kMaxSafeInteger);
  if (!info[2].IsArrayBuffer()) throw Napi::TypeError::New(env, "buffer must be an ArrayBuffer");
  Napi::ArrayBuffer buffer = info[2].As<Napi::ArrayBuffer>();
  uint64_t size = toUint(info[3], "size", kMaxSafeInteger);
  Napi::Object owner = toObject(info[4], "owner");
  // Past byteLength lies memory V8 may give to anything else: never let the guest see it.
  if (size == 0 || size > buffer.ByteLength()) {
    throwKvmError(env, "ioctl(KVM_SET_USER_MEMORY_REGION)", EINVAL,
                  "size " + hex(size) + " must be > 0 and within the buffer's byteLength " + hex(buffer.ByteLength()));
  }
  MemorySlot holder;
  holder.owner = Napi::Persistent(owner);
  registerSlot(env, slot, guestPhysAddr, buffer.Data(), size, std::move(holder));
}

void Vm::AddAnonymousMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t slot = static_cast<uint32_t>(toUint(info[0], "slot", 0xffff));
  uint64_t guestPhysAddr = toUint(info[1], "guestPhysAddr", kMaxSafeInteger);
  uint64_t size = toUint(info[2], "size", kMaxSafeInteger);
  vmFd(env, "mmap(anonymous guest memory)");
  if (size == 0) throwKvmError(env, "mmap(anonymous guest memory)", EINVAL, "size must be > 0");
  // Private and lazily backed: pages cost memory only once the guest touches them.
  void* mapping = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mapping == MAP_FAILED) throwKvmError(env, "mmap(anonymous guest memory)", errno, "size " + hex(size));
  registerMapping(env, slot, guestPhysAddr, mapping, size);
}

void Vm::AddFileMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t slot = static_cast<uint32_t>(toUint(info[0], "slot", 0xffff));
  uint64_t guestPhysAddr = toUint(info[1], "guestPhysAddr", kMaxSafeInteger);
  if (!info[2].IsString()) throw Napi::TypeError::New(env, "path must be a string");
  std::string path = info[2].As<Napi::String>().Utf8Value();
  uint64_t fileOffset = toUint(info[3], "fileOffset", kMaxSafeInteger);
  uint64_t size = toUint(info[4], "size", kMaxSafeInteger);
  const std::string syscall = "mmap(" + path + ")";
  vmFd(env, syscall);
  UniqueFd fd = openMemoryFile(env, syscall, path, fileOffset, size);
  // Private: the guest's writes go to copy-on-write pages of this process, never to the file.
  void* mapping = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd.get(),
                       static_cast<off_t>(fileOffset));
  if (mapping == MAP_FAILED) throwKvmError(env, syscall, errno, "offset " + hex(fileOffset) + ", size " + hex(size));
  registerMapping(env, slot, guestPhysAddr, mapping, size);
}

void Vm::registerMapping(Napi::Env env, uint32_t slot, uint64_t guestPhysAddr, void* mapping, uint64_t size) {
  MemorySlot holder;
  holder.mapping = mapping;
  holder.mappingSize = size;
  // On failure the holder is destroyed, and with it the mapping.
  registerSlot(env, slot, guestPhysAddr, mapping, size, std::move(holder));
}

void Vm::WriteSlotToFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t slot = static_cast<uint32_t>(toUint(info[0], "slot", 0xffff));
  int fd = static_cast<int>(toUint(info[1], "fd", 0x7fffffff));
  uint64_t fileOffset = toUint(info[2], "fileOffset", kMaxSafeInteger);
  const std::string syscall = "pwrite(slot " + std::to_string(slot) + ")";
  // The guest must not write the memory while it is copied: the file would hold a torn state.
  stateFd(env, "writeSlotToFile");
  auto found = slots_.find(slot);
  if (found == slots_.end() || found->second.mapping == nullptr) {
    throwKvmError(env, syscall, EINVAL, "slot " + std::to_string(slot) + " is not addon-owned memory");
  }
  const auto* memory = static_cast<const uint8_t*>(found->second.mapping);
  const uint64_t size = found->second.mappingSize;
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  const std::vector<uint8_t> zeroPage(page, 0);
  auto isZero = [&](uint64_t at) { return std::memcmp(memory + at, zeroPage.data(), page) == 0; };
  // Zero pages stay holes: untouched guest RAM costs neither disk nor the page cache.
  uint64_t at = 0;
  while (at < size) {
    if (isZero(at)) {
      at += page;
      continue;
    }
    uint64_t end = at + page;
    while (end < size && !isZero(end)) end += page;
    while (at < end) {
      ssize_t n = pwrite(fd, memory + at, end - at, static_cast<off_t>(fileOffset + at));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throwKvmError(env, syscall, n < 0 ? errno : EIO, "fd " + std::to_string(fd) + ", file offset " + hex(fileOffset + at));
      at += static_cast<uint64_t>(n);
    }
  }
}

Napi::Value Vm::CreateVcpu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id = static_cast<uint32_t>(toUint(info[0], "vcpu id", 0xffffffff));
  int fd = vmFd(env, "ioctl(KVM_CREATE_VCPU)");
  if (hasRun_) throwKvmError(env, "ioctl(KVM_CREATE_VCPU)", EBUSY, "vCPUs must be created before the first run()");
  vcpus_.push_back(Vcpu::create(env, fd, id, runSize_));
  return VcpuObject::New(env, Value(), vcpus_.back().get());
}

void Vm::SetIrqLine(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  kvm_irq_level irq{};
  irq.irq = static_cast<uint32_t>(toUint(info[0], "gsi", 0xffffffff));
  irq.level = toBool(info[1], "level") ? 1 : 0;
  if (ioctl(vmFd(env, "ioctl(KVM_IRQ_LINE)"), KVM_IRQ_LINE, &irq) < 0) {
    throwKvmError(env, "ioctl(KVM_IRQ_LINE)", errno, "gsi " + std::to_string(irq.irq));
  }
}

Napi::Value Vm::CreateEventfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  vmFd(env, "eventfd");
  // Non-blocking: the JS side polls it and must never block reading it.
  UniqueFd fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!fd.valid()) throwKvmError(env, "eventfd", errno);
  eventfds_.push_back(std::move(fd));
  return Napi::Number::New(env, eventfds_.back().get());
}

void Vm::checkOwnEventfd(Napi::Env env, const std::string& syscall, int fd) const {
  bool own = std::any_of(eventfds_.begin(), eventfds_.end(), [fd](const UniqueFd& e) { return e.get() == fd; });
  if (!own) throwKvmError(env, syscall, EBADF, "fd " + std::to_string(fd) + " was not created by this VM's createEventfd()");
}

void Vm::AddIoeventfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string syscall = "ioctl(KVM_IOEVENTFD)";
  int vm = vmFd(env, syscall);
  kvm_ioeventfd ioeventfd{};
  ioeventfd.fd = static_cast<int32_t>(toUint(info[0], "fd", 0x7fffffff));
  ioeventfd.addr = toUint(info[1], "addr", kMaxSafeInteger);
  ioeventfd.len = static_cast<uint32_t>(toUint(info[2], "size", 8));
  if (toBool(info[3], "pio")) ioeventfd.flags |= KVM_IOEVENTFD_FLAG_PIO;
  if (!info[4].IsUndefined()) {
    ioeventfd.datamatch = toUint(info[4], "datamatch", kMaxSafeInteger);
    ioeventfd.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
  }
  checkOwnEventfd(env, syscall, ioeventfd.fd);
  if (ioctl(vm, KVM_IOEVENTFD, &ioeventfd) < 0) {
    throwKvmError(env, syscall, errno,
                  std::string(ioeventfd.flags & KVM_IOEVENTFD_FLAG_PIO ? "port " : "address ") + hex(ioeventfd.addr) +
                      ", size " + std::to_string(ioeventfd.len));
  }
}

void Vm::AddIrqfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string syscall = "ioctl(KVM_IRQFD)";
  int vm = vmFd(env, syscall);
  kvm_irqfd irqfd{};
  irqfd.fd = static_cast<uint32_t>(toUint(info[0], "fd", 0x7fffffff));
  irqfd.gsi = static_cast<uint32_t>(toUint(info[1], "gsi", 0xffffffff));
  checkOwnEventfd(env, syscall, static_cast<int>(irqfd.fd));
  if (ioctl(vm, KVM_IRQFD, &irqfd) < 0) throwKvmError(env, syscall, errno, "gsi " + std::to_string(irqfd.gsi));
}

void Vm::SignalEventfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string syscall = "write(eventfd)";
  vmFd(env, syscall);
  int fd = static_cast<int>(toUint(info[0], "fd", 0x7fffffff));
  checkOwnEventfd(env, syscall, fd);
  uint64_t one = 1;
  // EAGAIN means the counter is saturated: the reader has a signal pending anyway.
  if (write(fd, &one, sizeof one) < 0 && errno != EAGAIN) throwKvmError(env, syscall, errno, "fd " + std::to_string(fd));
}

int Vm::stateFd(Napi::Env env, const char* ioctlName) const {
  int fd = vmFd(env, std::string("ioctl(") + ioctlName + ")");
  // VM-wide state is consistent only while no vCPU runs guest code.
  for (const auto& vcpu : vcpus_) vcpu->stateFd(env, ioctlName);
  return fd;
}

Napi::Value Vm::GetIrqchip(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  kvm_irqchip chip{};
  chip.chip_id = static_cast<uint32_t>(toUint(info[0], "chip id", kLastIrqchip));
  if (ioctl(stateFd(env, "KVM_GET_IRQCHIP"), KVM_GET_IRQCHIP, &chip) < 0) {
    throwKvmError(env, "ioctl(KVM_GET_IRQCHIP)", errno, "chip " + std::to_string(chip.chip_id));
  }
  if (chip.chip_id == KVM_IRQCHIP_IOAPIC) return blobToJs(env, chip.chip.ioapic);
  return blobToJs(env, chip.chip.pic);
}

void Vm::SetIrqchip(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string syscall = "ioctl(KVM_SET_IRQCHIP)";
  kvm_irqchip chip{};
  chip.chip_id = static_cast<uint32_t>(toUint(info[0], "chip id", kLastIrqchip));
  if (chip.chip_id == KVM_IRQCHIP_IOAPIC) {
    chip.chip.ioapic = blobFromJs<kvm_ioapic_state>(env, info[1], syscall, "ioapic state");
  } else {
    chip.chip.pic = blobFromJs<kvm_pic_state>(env, info[1], syscall, "pic state");
  }
  if (ioctl(stateFd(env, "KVM_SET_IRQCHIP"), KVM_SET_IRQCHIP, &chip) < 0) {
    throwKvmError(env, syscall, errno, "chip " + std::to_string(chip.chip_id));
  }
}

Napi::Value Vm::GetPit2(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  kvm_pit_state2 pit{};
  if (ioctl(stateFd(env, "KVM_GET_PIT2"), KVM_GET_PIT2, &pit) < 0) throwKvmError(env, "ioctl(KVM_GET_PIT2)", errno);
  return blobToJs(env, pit);
}

void Vm::SetPit2(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string syscall = "ioctl(KVM_SET_PIT2)";
  kvm_pit_state2 pit = blobFromJs<kvm_pit_state2>(env, info[0], syscall, "pit state");
  if (ioctl(stateFd(env, "KVM_SET_PIT2"), KVM_SET_PIT2, &pit) < 0) throwKvmError(env, syscall, errno);
}

Napi::Value Vm::GetClock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  kvm_clock_data clock{};
  if (ioctl(stateFd(env, "KVM_GET_CLOCK"), KVM_GET_CLOCK, &clock) < 0) {
    throwKvmError(env, "ioctl(KVM_GET_CLOCK)", errno);
  }
  return blobToJs(env, clock);
}

void Vm::SetClock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string syscall = "ioctl(KVM_SET_CLOCK)";
  kvm_clock_data clock = blobFromJs<kvm_clock_data>(env, info[0], syscall, "clock data");
  if (ioctl(stateFd(env, "KVM_SET_CLOCK"), KVM_SET_CLOCK, &clock) < 0) {
    throwKvmError(env, syscall, errno, "flags " + hex(clock.flags));
  }
}

void Vm::Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Function onExit = toFunction(info[0], "onExit");
  Napi::Function onStop = toFunction(info[1], "onStop");
  vmFd(env, "run");
  if (channel_) {
    if (!channel_->allStopsDelivered()) {
      throwKvmError(env, "run", EBUSY,
                    stopRequested_ ? "the previous run is still stopping: call run() again once every vCPU reported "
                                     "through onStop"
                                   : "the VM is running: stop() it, then call run() again once every vCPU reported "
                                     "through onStop");
    }
    // Called inside the last onStop: the previous run is over, only not wound up yet.
    endRun();
  }
  if (vcpus_.empty()) throwKvmError(env, "run", EINVAL, "create at least one vCPU before run()");
  Vcpu::installKickSignal(env);
  std::vector<std::shared_ptr<ExitSlot>> slots;
  for (auto& vcpu : vcpus_) slots.push_back(vcpu->prepareRun());
  // A stop() made while no run was in progress is for this run.
  if (stopRequested_) {
    for (auto& vcpu : vcpus_) vcpu->requestStop();
  }
  // The channel calls back only while it is unreleased, so a finished run's
  // channel never ends the run that replaced it.
  channel_ = ExitChannel::start(env, Value(), onExit, onStop, std::move(slots), [this] { endRun(); });
  if (!cleanupHookAdded_ && napi_add_env_cleanup_hook(env, onEnvCleanup, this) == napi_ok) cleanupHookAdded_ = true;
  try {
    for (auto& vcpu : vcpus_) vcpu->start(env, *channel_);
  } catch (const Napi::Error&) {
    // All or nothing: no callback is ever made for a run() that threw.
    cancel();
    joinThreads();
    throw;
  }
  hasRun_ = true;
}

void Vm::Stop(const Napi::CallbackInfo&) { stop(); }

void Vm::Close(const Napi::CallbackInfo&) { close(); }

void Vm::stop() {
  // Inside the last onStop (or a promise settled there) the run is over: this
  // stop is for the next one, and winding the run up now keeps it from being dropped.
  if (channel_ && channel_->allStopsDelivered()) endRun();
  stopRequested_ = true;
  for (auto& vcpu : vcpus_) vcpu->requestStop();
}

void Vm::cancel() {
  for (auto& vcpu : vcpus_) vcpu->requestCancel();
}

void Vm::joinThreads() {
  for (auto& vcpu : vcpus_) vcpu->join();
  if (channel_) channel_->release();
  channel_.reset();
}

void Vm::endRun() {
  joinThreads();
  // That run's stop is done with: the next run() runs until stopped again.
  stopRequested_ = false;
}

void Vm::close() {
  if (closed_) return;
  closed_ = true;
  // Never blocks for long: cancelled vCPU threads leave without waiting for JS.
  cancel();
  joinThreads();
  if (cleanupHookAdded_) {
    napi_remove_env_cleanup_hook(Env(), onEnvCleanup, this);
    cleanupHookAdded_ = false;
  }
  for (auto& vcpu : vcpus_) vcpu->close();
  vmFd_.reset();
  eventfds_.clear();
  // Only now that KVM no longer maps them: the guest's memory may go.
  slots_.clear();
}

void Vm::onEnvCleanup(void* data) {
  auto* vm = static_cast<Vm*>(data);
  vm->cleanupHookAdded_ = false;
  vm->close();
}

}  // namespace hako
