// Watching an eventfd from the JS thread's event loop: a libuv poll handle
// that, when the eventfd is readable, reads (and so resets) its 8-byte counter
// and hands the count on. Used for KVM ioeventfds (a guest kick reaches the
// device model without a vCPU exit) and for the I/O engine's completions.
#pragma once

#include <napi.h>
#include <uv.h>

#include <cstdint>
#include <functional>

namespace hako {

/**
 * One uv_poll_t on an eventfd the caller owns (and closes only after close()).
 * Unreferenced by default: it does not keep the event loop alive unless
 * keepAlive(true) is called. The handler runs on the JS thread inside a libuv
 * callback, not inside a JS call: it opens its own scopes.
 */
class EventfdPoll {
 public:
  using Handler = std::function<void(uint64_t count)>;

  /** Starts watching `fd`; throws a KvmError naming the failed uv_poll call. */
  EventfdPoll(Napi::Env env, int fd, Handler onReadable);
  ~EventfdPoll();
  EventfdPoll(const EventfdPoll&) = delete;
  EventfdPoll& operator=(const EventfdPoll&) = delete;

  /** Whether the handle keeps the event loop (and so the process) alive. */
  void keepAlive(bool alive);
  /** Stops watching; the handler is never called again. Idempotent. */
  void close();

 private:
  static void onPoll(uv_poll_t* handle, int status, int events);

  int fd_;
  Handler onReadable_;
  uv_poll_t* handle_ = nullptr;  // freed by uv_close's callback, which may come after this object is gone
};

/** watchFd(fd, onReadable): FdWatch of host/native.ts. */
Napi::Value WatchFd(const Napi::CallbackInfo& info);

}  // namespace hako
