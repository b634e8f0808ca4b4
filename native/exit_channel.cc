#include "exit_channel.h"

#include "kvm_error.h"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

namespace hako {

namespace {

// How long a vCPU thread spins for its answer before sleeping on the futex.
constexpr int64_t kSpinNanoseconds = 200'000;

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t) && std::atomic<uint32_t>::is_always_lock_free,
              "the futex word must be a plain 32-bit integer");

uint32_t* futexWord(std::atomic<uint32_t>& word) { return reinterpret_cast<uint32_t*>(&word); }

void futexWait(std::atomic<uint32_t>& word, uint32_t expected) {
  // EINTR (the kick signal) and EAGAIN (the word changed) both mean: look again.
  syscall(SYS_futex, futexWord(word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}

void futexWake(std::atomic<uint32_t>& word) {
  syscall(SYS_futex, futexWord(word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

int64_t nowNanoseconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

uint64_t loadLittleEndian(const uint8_t* p, uint32_t size) {
  uint64_t value = 0;
  std::memcpy(&value, p, size);  // x86 is little-endian, like the kvm_run data area
  return value;
}

void storeLittleEndian(uint8_t* p, uint32_t size, uint64_t value) { std::memcpy(p, &value, size); }

}  // namespace

const char* stopReasonName(StopReason reason) {
  switch (reason) {
    case StopReason::Stopped: return "stopped";
    case StopReason::Shutdown: return "shutdown";
    case StopReason::Reset: return "reset";
    case StopReason::Poweroff: return "poweroff";
    case StopReason::InternalError: return "internal-error";
    case StopReason::FailEntry: return "fail-entry";
    case StopReason::Unhandled: return "unhandled";
    case StopReason::Error: return "error";
  }
  return "error";
}

// ---- VcpuThreadScope ----

VcpuThreadScope::VcpuThreadScope() { live_.fetch_add(1); }

VcpuThreadScope::~VcpuThreadScope() { live_.fetch_sub(1); }

bool VcpuThreadScope::coreToSpare() {
  static const int cores = [] {
    cpu_set_t cpus;
    return sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? CPU_COUNT(&cpus) : 1;
  }();
  // The JS thread needs a core of its own too.
  return live_.load() < cores;
}

// ---- ExitSlot ----

// A waiting vCPU thread keeps waiting: its answer still comes.
void ExitSlot::requestStop() { word_.fetch_or(kStop); }

void ExitSlot::cancel() {
  uint32_t previous = word_.fetch_or(kStop | kCancel);
  if (previous & kSleeping) futexWake(word_);
}

bool ExitSlot::stopRequested() const { return word_.load() & kStop; }

bool ExitSlot::pending() const { return (word_.load() & (kPosted | kCancel)) == kPosted; }

ExitSlot::Outcome ExitSlot::handOff(ExitChannel& channel, const GuestAccess& access) {
  access_ = access;
  // Posted even after a stop request (the access must complete before the
  // vCPU stops); never after cancel(): no answer would come.
  uint32_t word = word_.load();
  do {
    if (word & kCancel) return Outcome::Cancelled;
  } while (!word_.compare_exchange_weak(word, word | kPosted));
  channel.notify();
  return wait();
}

ExitSlot::Outcome ExitSlot::wait() {
  uint32_t word = word_.load();
  if (VcpuThreadScope::coreToSpare()) {
    int64_t spinUntil = nowNanoseconds() + kSpinNanoseconds;
    // Reading the clock costs more than a pause: look at it every 64 spins.
    for (unsigned spins = 0; (word & kPosted) && !(word & kCancel); word = word_.load()) {
      if (++spins % 64 == 0 && nowNanoseconds() >= spinUntil) break;
      __builtin_ia32_pause();
    }
  }
  while ((word & kPosted) && !(word & kCancel)) {
    // kSleeping tells the JS thread to wake us; the wait returns at once if the word changed meanwhile.
    if (!(word & kSleeping) && !word_.compare_exchange_weak(word, word | kSleeping)) continue;
    futexWait(word_, word | kSleeping);
    word = word_.load();
  }
  if (word & kCancel) return Outcome::Cancelled;
  // Back to idle for the next access, keeping a stop or cancel that may have just arrived.
  word = word_.fetch_and(kStop | kCancel);
  return (word & kFailed) ? Outcome::HandlerFailed : Outcome::Answered;
}

void ExitSlot::answer(uint32_t extraBits) {
  uint32_t word = word_.load();
  while (!word_.compare_exchange_weak(word, (word & ~(kPosted | kSleeping)) | extraBits)) {
  }
  if (word & kSleeping) futexWake(word_);
}

// ---- ExitChannel ----

std::shared_ptr<ExitChannel> ExitChannel::start(Napi::Env env, Napi::Object vm, Napi::Function onExit,
                                                Napi::Function onStop, std::vector<std::shared_ptr<ExitSlot>> slots,
                                                std::function<void()> allStopped) {
  std::shared_ptr<ExitChannel> channel(
      new ExitChannel(env, vm, onExit, onStop, std::move(slots), std::move(allStopped)));
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) throw Napi::Error::New(env, "no libuv event loop");
  auto* async = new uv_async_t;
  int err = uv_async_init(loop, async, onAsync);
  if (err != 0) {
    delete async;
    throwKvmError(env, "uv_async_init", -err);
  }
  // The handle owns a reference to the channel: its callbacks can never
  // outlive it, whatever happens to the VM object meanwhile.
  async->data = new std::shared_ptr<ExitChannel>(channel);
  channel->async_ = async;
  return channel;
}

ExitChannel::ExitChannel(Napi::Env env, Napi::Object vm, Napi::Function onExit, Napi::Function onStop,
                         std::vector<std::shared_ptr<ExitSlot>> slots, std::function<void()> allStopped)
    : env_(env),
      vm_(Napi::Persistent(vm)),
      onExit_(Napi::Persistent(onExit)),
      onStop_(Napi::Persistent(onStop)),
      asyncContext_(std::in_place, env, "hako:vcpu"),
      slots_(std::move(slots)),
      allStopped_(std::move(allStopped)) {}

bool ExitChannel::allStopsDelivered() const {
  for (const auto& slot : slots_) {
    if (!slot->stopDelivered_) return false;
  }
  return true;
}

void ExitChannel::notify() { uv_async_send(async_); }

void ExitChannel::reportStop(ExitSlot& slot, StopReason reason, std::string detail) {
  slot.stopReason_ = reason;
  slot.stopDetail_ = std::move(detail);
  slot.stopReported_.store(true);
  notify();
}

void ExitChannel::release() {
  if (released_) return;
  released_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(async_), [](uv_handle_t* handle) {
    delete static_cast<std::shared_ptr<ExitChannel>*>(handle->data);
    delete reinterpret_cast<uv_async_t*>(handle);
  });
  async_ = nullptr;
  if (!dispatching_) dropJsReferences();
}

void ExitChannel::dropJsReferences() {
  vm_.Reset();
  onExit_.Reset();
  onStop_.Reset();
  asyncContext_.reset();
}

void ExitChannel::onAsync(uv_async_t* handle) {
  std::shared_ptr<ExitChannel> channel = *static_cast<std::shared_ptr<ExitChannel>*>(handle->data);
  channel->dispatch();
}

void ExitChannel::dispatch() {
  // One wakeup may stand for several notifications: look at every slot.
  dispatching_ = true;
  for (auto& slot : slots_) {
    if (!released_ && slot->pending()) deliverExit(*slot);
    if (!released_ && slot->stopReported_.load() && !slot->stopDelivered_) deliverStop(*slot);
  }
  dispatching_ = false;
  if (released_) dropJsReferences();
}

void ExitChannel::deliverExit(ExitSlot& slot) {
  const GuestAccess& access = slot.access_;
  for (uint32_t i = 0; i < access.count; i++) {
    Napi::HandleScope scope(env_);
    uint8_t* element = access.data + i * access.size;
    uint64_t value = access.isWrite ? loadLittleEndian(element, access.size) : 0;
    Napi::Value result;
    try {
      result = onExit_.MakeCallback(vm_.Value(),
                                    {Napi::Number::New(env_, slot.vcpuId_),
                                     Napi::String::New(env_, access.kind == GuestAccess::Kind::Pio ? "pio" : "mmio"),
                                     Napi::Number::New(env_, static_cast<double>(access.addr)),
                                     Napi::Number::New(env_, access.size), Napi::Boolean::New(env_, access.isWrite),
                                     Napi::BigInt::New(env_, value)},
                                    *asyncContext_);
    } catch (const Napi::Error& e) {
      // A hostile guest may drive a device model into throwing: that stops
      // this vCPU with 'error', it must not take the host process down.
      if (!slot.pending()) return;
      slot.failure_ = "the exit handler threw: " + e.Message();
      slot.answer(ExitSlot::kFailed);
      return;
    }
    // close() inside the handler released the vCPU thread, and its kvm_run
    // area may be gone: nothing more is read or written.
    if (!slot.pending()) return;
    if (access.isWrite) continue;
    if (result.IsBigInt()) {
      bool lossless;  // only the low `size` bytes are used
      storeLittleEndian(element, access.size, result.As<Napi::BigInt>().Uint64Value(&lossless));
    } else if (result.IsUndefined()) {
      storeLittleEndian(element, access.size, 0);
    } else {
      slot.failure_ = std::string("the exit handler returned a ") + (result.IsNumber() ? "number" : "non-BigInt") +
                      " for a " + std::to_string(access.size) + "-byte read, expected a BigInt or undefined";
      slot.answer(ExitSlot::kFailed);
      return;
    }
  }
  slot.answer(0);
}

void ExitChannel::deliverStop(ExitSlot& slot) {
  slot.stopDelivered_ = true;
  Napi::HandleScope scope(env_);
  std::optional<Napi::Error> thrown;
  try {
    onStop_.MakeCallback(vm_.Value(),
                         {Napi::Number::New(env_, slot.vcpuId_), Napi::String::New(env_, stopReasonName(slot.stopReason_)),
                          Napi::String::New(env_, slot.stopDetail_)},
                         *asyncContext_);
  } catch (const Napi::Error& e) {
    thrown = e;
  }
  if (++stopsDelivered_ == slots_.size() && !released_) allStopped_();
  // onStop throwing is a bug of the host code: report it like any uncaught exception.
  if (thrown) napi_fatal_exception(env_, thrown->Value());
}

}  // namespace hako
