// The JS Vm (NativeVm in host/native.ts): one KVM VM with its in-kernel
// irqchip and PIT, guest memory slots, eventfds, vCPUs and their threads.
#pragma once

#include "exit_channel.h"
#include "unique_fd.h"
#include "vcpu.h"

#include <napi.h>

#include <map>
#include <memory>
#include <vector>

namespace hako {

class Vm : public Napi::ObjectWrap<Vm> {
 public:
  static Napi::Function Define(Napi::Env env);

  explicit Vm(const Napi::CallbackInfo& info);
  /** The finalizer: a VM that was not closed is closed when collected. */
  ~Vm() override;

 private:
  /** Guest memory registered in one KVM slot: JS-owned (kept alive by `owner`) or an addon-owned mapping. */
  struct MemorySlot {
    Napi::ObjectReference owner;
    void* mapping = nullptr;
    size_t mappingSize = 0;
    MemorySlot() = default;
    MemorySlot(MemorySlot&& other) noexcept;
    MemorySlot& operator=(MemorySlot&&) = delete;
    ~MemorySlot();
  };

  void SetMemory(const Napi::CallbackInfo& info);
  void AddAnonymousMemory(const Napi::CallbackInfo& info);
  void AddFileMemory(const Napi::CallbackInfo& info);
  void WriteSlotToFile(const Napi::CallbackInfo& info);
  Napi::Value CreateVcpu(const Napi::CallbackInfo& info);
  void SetIrqLine(const Napi::CallbackInfo& info);
  Napi::Value CreateEventfd(const Napi::CallbackInfo& info);
  void AddIoeventfd(const Napi::CallbackInfo& info);
  void AddIrqfd(const Napi::CallbackInfo& info);
  void SignalEventfd(const Napi::CallbackInfo& info);
  Napi::Value GetIrqchip(const Napi::CallbackInfo& info);
  void SetIrqchip(const Napi::CallbackInfo& info);
  Napi::Value GetPit2(const Napi::CallbackInfo& info);
  void SetPit2(const Napi::CallbackInfo& info);
  Napi::Value GetClock(const Napi::CallbackInfo& info);
  void SetClock(const Napi::CallbackInfo& info);
  void Run(const Napi::CallbackInfo& info);
  void Stop(const Napi::CallbackInfo& info);
  void Close(const Napi::CallbackInfo& info);

  /** The VM fd for `syscall`; throws EBADF once closed. */
  int vmFd(Napi::Env env, const std::string& syscall) const;
  /** The VM fd for a VM-wide state ioctl; also throws EBUSY while any vCPU may run guest code. */
  int stateFd(Napi::Env env, const char* ioctlName) const;
  /** Registers an addon-owned mapping (unmapped at close, or at once if registering fails). */
  void registerMapping(Napi::Env env, uint32_t slot, uint64_t guestPhysAddr, void* mapping, uint64_t size);
  void registerSlot(Napi::Env env, uint32_t slot, uint64_t guestPhysAddr, void* host, uint64_t size,
                    MemorySlot holder);
  void checkOwnEventfd(Napi::Env env, const std::string& syscall, int fd) const;
  /** Stops the current run; once its last onStop was called, the next run at once. */
  void stop();
  /** stop() without waiting for answers: vCPU threads parked in a handoff leave at once. */
  void cancel();
  /** After every vCPU thread ended (or was told to): joins them and releases the run's channel. */
  void joinThreads();
  /** After the last onStop of a run: winds it up, so that run() may start the vCPUs again. */
  void endRun();
  void close();
  /** Node environment teardown (process exit, worker end): vCPU threads must not outlive it. */
  static void onEnvCleanup(void* vm);

  UniqueFd vmFd_;
  size_t runSize_ = 0;
  std::map<uint32_t, MemorySlot> slots_;
  std::vector<UniqueFd> eventfds_;
  std::vector<std::unique_ptr<Vcpu>> vcpus_;
  std::shared_ptr<ExitChannel> channel_;  // of the run in progress (or whose last onStop is on the stack)
  bool cleanupHookAdded_ = false;
  bool hasRun_ = false;
  bool stopRequested_ = false;  // for the run in progress, else for the next one
  bool closed_ = false;
};

}  // namespace hako
