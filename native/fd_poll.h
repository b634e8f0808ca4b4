// Watching a file descriptor from the JS thread's event loop: a libuv poll
// handle with a changeable event mask (FdPoll), and the native half of a JS
// watch object that calls a JS function on each event (JsFdWatch). eventfd
// watches (fd_watch.h) and socket watches (pollFd: vsock's host sockets) are
// both built from these.
#pragma once

#include <napi.h>
#include <uv.h>

#include <functional>
#include <optional>
#include <vector>

namespace hako {

/**
 * One uv_poll_t on an fd the caller owns (and closes only after close()).
 * Level-triggered: an fd that stays ready is reported on every loop turn.
 * Unreferenced by default: it does not keep the event loop alive unless
 * keepAlive(true) is called. The handler runs on the JS thread inside a libuv
 * callback, not inside a JS call: it opens its own scopes.
 */
class FdPoll {
 public:
  /** `status` < 0 is a libuv error for the fd (polling has then stopped); `events` are UV_* bits. */
  using Handler = std::function<void(int status, int events)>;

  /** Starts watching `fd` for `events` (UV_* bits, 0 = none yet); throws a KvmError naming the failed uv_poll call. */
  FdPoll(Napi::Env env, int fd, int events, Handler handler);
  ~FdPoll();
  FdPoll(const FdPoll&) = delete;
  FdPoll& operator=(const FdPoll&) = delete;

  /** Replaces the event mask (0 stops polling); returns 0 or a negative libuv error. */
  int setEvents(int events);
  /** Whether the handle keeps the event loop (and so the process) alive. */
  void keepAlive(bool alive);
  /** Stops watching; the handler is never called again. Idempotent. */
  void close();

 private:
  static void onPoll(uv_poll_t* handle, int status, int events);

  Handler handler_;
  uv_poll_t* handle_ = nullptr;  // freed by uv_close's callback, which may come after this object is gone
};

/**
 * The native half of a JS watch object: an FdPoll whose events call a JS
 * function. `translate` turns one event into the function's arguments (inside
 * a HandleScope), or into nothing to skip the call. The watch closes itself
 * when the Node environment shuts down.
 */
class JsFdWatch {
 public:
  using Translate = std::function<std::optional<std::vector<napi_value>>(Napi::Env env, int status, int events)>;

  JsFdWatch(Napi::Env env, int fd, int events, Napi::Function callback, const char* resourceName, Translate translate);
  ~JsFdWatch();
  JsFdWatch(const JsFdWatch&) = delete;
  JsFdWatch& operator=(const JsFdWatch&) = delete;

  /** The poll, or nullptr once closed. */
  FdPoll* poll() { return closed_ ? nullptr : &*poll_; }
  /** Stops watching and drops the JS function (after it returns, if it is running). Idempotent. */
  void close();

  /**
   * A plain JS object owning `watch`: close() and a finalizer that closes
   * and frees it if the object is collected without close().
   */
  static Napi::Object wrap(Napi::Env env, std::unique_ptr<JsFdWatch> watch);

 private:
  void deliver(int status, int events);
  void releaseJs();
  static void onEnvCleanup(void* watch);

  Napi::Env env_;
  Napi::FunctionReference callback_;
  std::optional<Napi::AsyncContext> asyncContext_;
  Translate translate_;
  std::optional<FdPoll> poll_;
  bool closed_ = false;
  bool delivering_ = false;
};

/** pollFd(fd, readable, writable, onReady): SocketWatch of host/native.ts. */
Napi::Value PollFd(const Napi::CallbackInfo& info);

}  // namespace hako
