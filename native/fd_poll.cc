#include "fd_poll.h"

#include "js_values.h"
#include "kvm_error.h"

#include <climits>
#include <memory>

namespace hako {

// ---- FdPoll ----

FdPoll::FdPoll(Napi::Env env, int fd, int events, Handler handler) : handler_(std::move(handler)) {
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
  err = setEvents(events);
  if (err != 0) {
    close();
    throwKvmError(env, "uv_poll_start", -err, "fd " + std::to_string(fd));
  }
}

FdPoll::~FdPoll() { close(); }

int FdPoll::setEvents(int events) {
  if (handle_ == nullptr) return UV_EBADF;
  if (events == 0) return uv_poll_stop(handle_);
  return uv_poll_start(handle_, events, onPoll);
}

void FdPoll::keepAlive(bool alive) {
  if (handle_ == nullptr) return;
  auto* handle = reinterpret_cast<uv_handle_t*>(handle_);
  if (alive) {
    uv_ref(handle);
  } else {
    uv_unref(handle);
  }
}

void FdPoll::close() {
  if (handle_ == nullptr) return;
  handle_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(handle_), [](uv_handle_t* handle) { delete reinterpret_cast<uv_poll_t*>(handle); });
  handle_ = nullptr;
}

void FdPoll::onPoll(uv_poll_t* handle, int status, int events) {
  auto* self = static_cast<FdPoll*>(handle->data);
  if (self == nullptr) return;
  // The fd went bad (e.g. closed under the watch): polling it again would spin.
  if (status < 0) uv_poll_stop(handle);
  self->handler_(status, events);
}

// ---- JsFdWatch ----

JsFdWatch::JsFdWatch(Napi::Env env, int fd, int events, Napi::Function callback, const char* resourceName,
                     Translate translate)
    : env_(env),
      callback_(Napi::Persistent(callback)),
      asyncContext_(std::in_place, env, resourceName),
      translate_(std::move(translate)) {
  poll_.emplace(env, fd, events, [this](int status, int ready) { deliver(status, ready); });
  napi_add_env_cleanup_hook(env, onEnvCleanup, this);
}

JsFdWatch::~JsFdWatch() { close(); }

void JsFdWatch::close() {
  if (closed_) return;
  closed_ = true;
  napi_remove_env_cleanup_hook(env_, onEnvCleanup, this);
  poll_->close();
  // Closed from inside the callback: its scope still uses them.
  if (!delivering_) releaseJs();
}

void JsFdWatch::deliver(int status, int events) {
  Napi::HandleScope scope(env_);
  std::optional<std::vector<napi_value>> args = translate_(env_, status, events);
  if (!args) return;
  delivering_ = true;
  std::optional<Napi::Error> thrown;
  try {
    callback_.MakeCallback(env_.Global(), *args, *asyncContext_);
  } catch (const Napi::Error& e) {
    thrown = e;
  }
  delivering_ = false;
  if (closed_) releaseJs();
  // A throwing callback is a bug of the host code: report it like any uncaught exception.
  if (thrown) napi_fatal_exception(env_, thrown->Value());
}

void JsFdWatch::releaseJs() {
  callback_.Reset();
  asyncContext_.reset();
}

void JsFdWatch::onEnvCleanup(void* watch) { static_cast<JsFdWatch*>(watch)->close(); }

Napi::Object JsFdWatch::wrap(Napi::Env env, std::unique_ptr<JsFdWatch> watch) {
  // A plain object rather than a class: close() is all every watch needs.
  Napi::Object object = Napi::Object::New(env);
  object.Set("close", Napi::Function::New(
                          env, [](const Napi::CallbackInfo& call) { static_cast<JsFdWatch*>(call.Data())->close(); },
                          "close", watch.get()));
  JsFdWatch* raw = watch.release();
  object.AddFinalizer([](Napi::Env, JsFdWatch* w) { delete w; }, raw);
  return object;
}

// ---- pollFd ----

namespace {

int eventMask(bool readable, bool writable) {
  // UV_DISCONNECT (EPOLLRDHUP) so a peer's shutdown is seen even while only writability is watched.
  return (readable ? UV_READABLE | UV_DISCONNECT : 0) | (writable ? UV_WRITABLE : 0);
}

}  // namespace

Napi::Value PollFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(toUint(info[0], "fd", INT_MAX));
  bool readable = toBool(info[1], "readable");
  bool writable = toBool(info[2], "writable");
  Napi::Function onReady = toFunction(info[3], "onReady");
  auto watch = std::make_unique<JsFdWatch>(
      env, fd, eventMask(readable, writable), onReady, "hako:pollfd",
      [](Napi::Env env, int status, int events) -> std::optional<std::vector<napi_value>> {
        // An error on the fd reads as every readiness, so the next read or write returns the error.
        bool failed = status < 0;
        bool hangup = failed || (events & UV_DISCONNECT) != 0;
        return std::vector<napi_value>{
            Napi::Boolean::New(env, failed || (events & UV_READABLE) != 0),
            Napi::Boolean::New(env, failed || (events & UV_WRITABLE) != 0),
            Napi::Boolean::New(env, hangup),
        };
      });
  JsFdWatch* raw = watch.get();
  Napi::Object object = JsFdWatch::wrap(env, std::move(watch));
  object.Set("setEvents", Napi::Function::New(
                              env,
                              [](const Napi::CallbackInfo& call) {
                                bool r = toBool(call[0], "readable");
                                bool w = toBool(call[1], "writable");
                                FdPoll* poll = static_cast<JsFdWatch*>(call.Data())->poll();
                                if (poll == nullptr) return;  // closed: nothing to watch
                                int err = poll->setEvents(eventMask(r, w));
                                if (err != 0) throwKvmError(call.Env(), "uv_poll_start", -err);
                              },
                              "setEvents", raw));
  return object;
}

}  // namespace hako
