// Watching an eventfd from the JS thread's event loop: a poll (fd_poll.h)
// that, when the eventfd is readable, reads (and so resets) its 8-byte counter
// and hands the count on. Used for KVM ioeventfds (a guest kick reaches the
// device model without a vCPU exit) and for the I/O engine's completions.
#pragma once

#include "fd_poll.h"

#include <napi.h>

#include <cstdint>
#include <functional>
#include <optional>

namespace hako {

/**
 * An FdPoll on an eventfd the caller owns (and closes only after close()).
 * Unreferenced by default, like FdPoll. The handler runs on the JS thread
 * inside a libuv callback, not inside a JS call: it opens its own scopes.
 */
class EventfdPoll {
 public:
  using Handler = std::function<void(uint64_t count)>;

  /** Starts watching `fd`; throws a KvmError naming the failed uv_poll call. */
  EventfdPoll(Napi::Env env, int fd, Handler onReadable);

  /** Whether the handle keeps the event loop (and so the process) alive. */
  void keepAlive(bool alive) { poll_->keepAlive(alive); }
  /** Stops watching; the handler is never called again. Idempotent. */
  void close() { poll_->close(); }

 private:
  std::optional<FdPoll> poll_;
};

/** Reads (and so resets) the counter of eventfd `fd`; nothing when another reader took it first. */
std::optional<uint64_t> readEventfd(int fd);

/** watchFd(fd, onReadable): FdWatch of host/native.ts. */
Napi::Value WatchFd(const Napi::CallbackInfo& info);

}  // namespace hako
