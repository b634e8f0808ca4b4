// One vCPU: its fd, its kvm_run area and the thread that runs KVM_RUN and
// turns exits into handoffs (port/MMIO) or a final stop report.
#pragma once

#include "exit_channel.h"
#include "unique_fd.h"

#include <linux/kvm.h>
#include <napi.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

namespace hako {

class Vcpu {
 public:
  /** KVM_CREATE_VCPU and the kvm_run mapping; throws KvmError. */
  static std::unique_ptr<Vcpu> create(Napi::Env env, int vmFd, uint32_t id, size_t runSize);

  /**
   * Makes sure the signal that kicks vCPU threads out of KVM_RUN has its
   * (empty) handler. Once per process; throws if someone else handles it.
   */
  static void installKickSignal(Napi::Env env);

  Vcpu(const Vcpu&) = delete;
  Vcpu& operator=(const Vcpu&) = delete;
  ~Vcpu();

  uint32_t id() const { return slot_->vcpuId(); }
  /** The handoff mailbox of the current (or last) run, shared with its ExitChannel. */
  const std::shared_ptr<ExitSlot>& slot() const { return slot_; }

  /**
   * The fd for a state ioctl (KVM_GET_REGS...) from the JS thread. Throws
   * EBADF once closed, and EBUSY while the thread may be inside KVM_RUN
   * (the ioctl would wait for the guest to exit).
   */
  int stateFd(Napi::Env env, const char* ioctlName) const;

  // JS thread.
  /**
   * Before each run, while no thread runs: a fresh mailbox, so that nothing of
   * the last run (its stop request, its stop report) carries over. Returns it.
   */
  const std::shared_ptr<ExitSlot>& prepareRun();
  /**
   * Starts the thread running KVM_RUN from the state KVM holds (where the last
   * run stopped); throws if the thread cannot be created.
   */
  void start(Napi::Env env, ExitChannel& channel);
  /**
   * Non-blocking, idempotent, safe before start() and after the thread ended.
   * The thread completes an access in flight (after its answer) without
   * running guest code, then stops: its state is then consistent.
   */
  void requestStop();
  /** requestStop() that also stops waiting for an answer, dropping the access: for close(). */
  void requestCancel();
  /** Waits for the thread of the current run to end; afterwards start() may run it again. */
  void join();
  /** After join(): closes the fd and unmaps kvm_run. Idempotent. */
  void close();

 private:
  Vcpu(uint32_t id, UniqueFd fd, kvm_run* run, size_t runSize);

  /** Makes the thread leave KVM_RUN (or enter it only to complete an access) and look at its slot. */
  void kick();
  void threadMain(ExitChannel& channel);
  /** Handles the exit in kvm_run; false (with reason and detail set) when the vCPU must stop. */
  bool handleExit(ExitChannel& channel, StopReason& reason, std::string& detail, bool& accessInFlight);
  bool emulate(ExitChannel& channel, const GuestAccess& access, StopReason& reason, std::string& detail,
               bool& accessInFlight);
  /** ", rip 0x..." for stop details: it makes guest bugs diagnosable. */
  std::string ripSuffix() const;

  UniqueFd fd_;
  kvm_run* run_;
  size_t runSize_;
  std::shared_ptr<ExitSlot> slot_;
  std::thread thread_;
  std::atomic<bool> threadActive_{false};
};

}  // namespace hako
