#include "fd_watch.h"

#include "js_values.h"
#include "kvm_error.h"

#include <unistd.h>

#include <cerrno>
#include <climits>
#include <memory>
#include <optional>

namespace hako {

// ---- EventfdPoll ----

EventfdPoll::EventfdPoll(Napi::Env env, int fd, Handler onReadable) : fd_(fd), onReadable_(std::move(onReadable)) {
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) throw Napi::Error::New(env, "no libuv event loop");
  auto* handle = new uv_poll_t;
  int err = uv_poll_init(loop, handle, fd);
  if (err != 0) {
    delete handle;
    throwKvmError(env, "uv_poll_init", -err, "fd " + std::to_string(fd));
  }
  handle->data = this;
  handle_ = handle;
  uv_unref(reinterpret_cast<uv_handle_t*>(handle_));
  err = uv_poll_start(handle_, UV_READABLE, onPoll);
  if (err != 0) {
    close();
    throwKvmError(env, "uv_poll_start", -err, "fd " + std::to_string(fd));
  }
}

EventfdPoll::~EventfdPoll() { close(); }

void EventfdPoll::keepAlive(bool alive) {
  if (handle_ == nullptr) return;
  auto* handle = reinterpret_cast<uv_handle_t*>(handle_);
  if (alive) {
    uv_ref(handle);
  } else {
    uv_unref(handle);
  }
}

void EventfdPoll::close() {
  if (handle_ == nullptr) return;
  handle_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(handle_), [](uv_handle_t* handle) { delete reinterpret_cast<uv_poll_t*>(handle); });
  handle_ = nullptr;
}

void EventfdPoll::onPoll(uv_poll_t* handle, int status, int) {
  auto* self = static_cast<EventfdPoll*>(handle->data);
  if (self == nullptr) return;
  if (status < 0) {
    // The fd went bad (e.g. closed under the watch): polling it again would spin.
    uv_poll_stop(handle);
    return;
  }
  uint64_t count = 0;
  ssize_t n;
  do {
    n = read(self->fd_, &count, sizeof count);
  } while (n < 0 && errno == EINTR);
  // EAGAIN: another reader took the count first (a spurious wakeup).
  if (n != sizeof count) return;
  self->onReadable_(count);
}

// ---- watchFd ----

namespace {

/** What a JS FdWatch holds: the poll, the JS callback, and the env cleanup hook that closes both. */
class FdWatch {
 public:
  FdWatch(Napi::Env env, int fd, Napi::Function onReadable)
      : env_(env), onReadable_(Napi::Persistent(onReadable)), asyncContext_(std::in_place, env, "hako:fdwatch") {
    poll_.emplace(env, fd, [this](uint64_t count) { deliver(count); });
    napi_add_env_cleanup_hook(env, onEnvCleanup, this);
  }
  ~FdWatch() { close(); }

  void close() {
    if (closed_) return;
    closed_ = true;
    napi_remove_env_cleanup_hook(env_, onEnvCleanup, this);
    poll_->close();
    // Closed from inside onReadable: the callback scope still uses them.
    if (!delivering_) releaseJs();
  }

 private:
  void deliver(uint64_t count) {
    Napi::HandleScope scope(env_);
    delivering_ = true;
    std::optional<Napi::Error> thrown;
    try {
      onReadable_.MakeCallback(env_.Global(), {Napi::BigInt::New(env_, count)}, *asyncContext_);
    } catch (const Napi::Error& e) {
      thrown = e;
    }
    delivering_ = false;
    if (closed_) releaseJs();
    // A throwing onReadable is a bug of the host code: report it like any uncaught exception.
    if (thrown) napi_fatal_exception(env_, thrown->Value());
  }

  void releaseJs() {
    onReadable_.Reset();
    asyncContext_.reset();
  }

  static void onEnvCleanup(void* watch) { static_cast<FdWatch*>(watch)->close(); }

  Napi::Env env_;
  Napi::FunctionReference onReadable_;
  std::optional<Napi::AsyncContext> asyncContext_;
  std::optional<EventfdPoll> poll_;
  bool closed_ = false;
  bool delivering_ = false;
};

}  // namespace

Napi::Value WatchFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(toUint(info[0], "fd", INT_MAX));
  Napi::Function onReadable = toFunction(info[1], "onReadable");
  auto watch = std::make_unique<FdWatch>(env, fd, onReadable);
  // A plain object rather than a class: nothing but close() is needed, and a
  // watch that is collected without close() is closed by the finalizer.
  Napi::Object object = Napi::Object::New(env);
  object.Set("close", Napi::Function::New(
                          env, [](const Napi::CallbackInfo& call) { static_cast<FdWatch*>(call.Data())->close(); },
                          "close", watch.get()));
  FdWatch* raw = watch.release();
  object.AddFinalizer([](Napi::Env, FdWatch* w) { delete w; }, raw);
  return object;
}

}  // namespace hako
