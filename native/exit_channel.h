// The handoff between vCPU threads and the JS thread. A vCPU thread that hits
// a port or MMIO access publishes it in its ExitSlot, wakes the JS thread and
// waits; the JS thread calls onExit and answers through the slot. A vCPU
// thread that leaves KVM_RUN reports why, and the JS thread calls onStop; once
// every vCPU did, the run is over and a new run gets a new channel.
//
// Waking uses a libuv async handle (an eventfd in the JS thread's event loop):
// measured here it wakes the JS thread in about half the time of a napi
// threadsafe function. Waiting spins briefly (an answer usually comes within
// microseconds) when there is a core to spare, then sleeps on a futex: a
// spinning vCPU thread that shares a core with the JS thread or another vCPU
// slows both (measured: 2 vCPUs on 2 cores, 26 us per exit spinning, 15 us not).
#pragma once

#include <napi.h>
#include <uv.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace hako {

/** One guest access to emulate: `count` elements of `size` bytes at `data` (inside kvm_run). */
struct GuestAccess {
  enum class Kind { Pio, Mmio };
  Kind kind;
  uint64_t addr;
  uint32_t size;   // 1, 2, 4 or 8
  uint32_t count;  // > 1 for string port I/O (rep ins/outs)
  bool isWrite;
  uint8_t* data;
};

/** The StopReason union of host/native.ts. */
enum class StopReason { Stopped, Shutdown, Reset, Poweroff, InternalError, FailEntry, Unhandled, Error };

const char* stopReasonName(StopReason reason);

class ExitChannel;

/** Lives on each vCPU thread's stack: counts vCPU threads process-wide. */
class VcpuThreadScope {
 public:
  VcpuThreadScope();
  ~VcpuThreadScope();
  VcpuThreadScope(const VcpuThreadScope&) = delete;
  VcpuThreadScope& operator=(const VcpuThreadScope&) = delete;
  /** True while every vCPU thread and the JS thread can have a core of their own. */
  static bool coreToSpare();

 private:
  static inline std::atomic<int> live_{0};
};

/** The mailbox of one vCPU, shared by its Vcpu and the ExitChannel. */
class ExitSlot {
 public:
  enum class Outcome { Answered, Cancelled, HandlerFailed };

  explicit ExitSlot(uint32_t vcpuId) : vcpuId_(vcpuId) {}
  ExitSlot(const ExitSlot&) = delete;
  ExitSlot& operator=(const ExitSlot&) = delete;

  uint32_t vcpuId() const { return vcpuId_; }

  // Any thread, sticky.
  /**
   * The vCPU stops once it has no access in flight: a posted access is still
   * answered by the JS thread, so that the vCPU can complete it and stop in a
   * consistent state (a snapshot can be taken then).
   */
  void requestStop();
  /** Also ends every wait and every later handOff at once, dropping the access (close() is final). */
  void cancel();
  bool stopRequested() const;
  /** Posted and neither answered nor cancelled: the vCPU thread is parked outside KVM_RUN. */
  bool pending() const;

  // vCPU thread.
  /** Publishes `access`, wakes the JS thread and waits for the answer (or for cancel()). */
  Outcome handOff(ExitChannel& channel, const GuestAccess& access);
  /** Why the handler failed, after handOff returned HandlerFailed. */
  const std::string& failure() const { return failure_; }

 private:
  friend class ExitChannel;

  // Bits of word_, which is also the futex the vCPU thread sleeps on.
  static constexpr uint32_t kPosted = 1;    // an access waits for its answer
  static constexpr uint32_t kSleeping = 2;  // the vCPU thread sleeps (or is about to) on the futex
  static constexpr uint32_t kStop = 4;      // stop requested
  static constexpr uint32_t kFailed = 8;    // the handler threw instead of answering
  static constexpr uint32_t kCancel = 16;   // no answer will come: the VM is closing

  Outcome wait();
  /** JS thread: clears kPosted (setting `extraBits`) and wakes the vCPU thread. */
  void answer(uint32_t extraBits);

  const uint32_t vcpuId_;
  std::atomic<uint32_t> word_{0};
  GuestAccess access_{};
  std::string failure_;
  // Written by the vCPU thread before stopReported_ is set, read by the JS thread after.
  StopReason stopReason_ = StopReason::Stopped;
  std::string stopDetail_;
  std::atomic<bool> stopReported_{false};
  bool stopDelivered_ = false;  // JS thread only
};

/** One per run of a VM: wakes the JS thread and calls onExit / onStop there. */
class ExitChannel {
 public:
  /**
   * JS thread. Keeps `vm` alive until release(). `allStopped` runs on the JS
   * thread after the last onStop; it must join the vCPU threads and call release().
   */
  static std::shared_ptr<ExitChannel> start(Napi::Env env, Napi::Object vm, Napi::Function onExit,
                                            Napi::Function onStop, std::vector<std::shared_ptr<ExitSlot>> slots,
                                            std::function<void()> allStopped);
  ExitChannel(const ExitChannel&) = delete;
  ExitChannel& operator=(const ExitChannel&) = delete;

  /** JS thread: onStop was called for every vCPU (the last one may still be on the stack). */
  bool allStopsDelivered() const;
  /** vCPU thread: wakes the JS thread to look at the slots. */
  void notify();
  /** vCPU thread, once, as it leaves: onStop(vcpu, reason, detail) follows on the JS thread. */
  void reportStop(ExitSlot& slot, StopReason reason, std::string detail);
  /**
   * JS thread, once no vCPU thread runs: no callback is called any more, the
   * event loop may end and the VM may be collected. Idempotent.
   */
  void release();

 private:
  ExitChannel(Napi::Env env, Napi::Object vm, Napi::Function onExit, Napi::Function onStop,
              std::vector<std::shared_ptr<ExitSlot>> slots, std::function<void()> allStopped);

  static void onAsync(uv_async_t* handle);
  void dispatch();
  /** Drops the JS objects; never while a callback made with them is on the stack. */
  void dropJsReferences();
  void deliverExit(ExitSlot& slot);
  void deliverStop(ExitSlot& slot);

  Napi::Env env_;
  uv_async_t* async_ = nullptr;  // freed by its close callback, with the reference it holds to this channel
  Napi::ObjectReference vm_;
  Napi::FunctionReference onExit_;
  Napi::FunctionReference onStop_;
  std::optional<Napi::AsyncContext> asyncContext_;
  std::vector<std::shared_ptr<ExitSlot>> slots_;
  std::function<void()> allStopped_;
  size_t stopsDelivered_ = 0;
  bool dispatching_ = false;
  bool released_ = false;
};

}  // namespace hako
