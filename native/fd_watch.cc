#include "fd_watch.h"

#include "js_values.h"

#include <unistd.h>

#include <cerrno>
#include <climits>
#include <memory>

namespace hako {

std::optional<uint64_t> readEventfd(int fd) {
  uint64_t count = 0;
  ssize_t n;
  do {
    n = read(fd, &count, sizeof count);
  } while (n < 0 && errno == EINTR);
  // EAGAIN: another reader took the count first (a spurious wakeup).
  if (n != sizeof count) return std::nullopt;
  return count;
}

EventfdPoll::EventfdPoll(Napi::Env env, int fd, Handler onReadable) {
  poll_.emplace(env, fd, UV_READABLE, [fd, onReadable = std::move(onReadable)](int status, int) {
    if (status < 0) return;
    if (std::optional<uint64_t> count = readEventfd(fd)) onReadable(*count);
  });
}

Napi::Value WatchFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(toUint(info[0], "fd", INT_MAX));
  Napi::Function onReadable = toFunction(info[1], "onReadable");
  auto watch = std::make_unique<JsFdWatch>(
      env, fd, UV_READABLE, onReadable, "hako:fdwatch",
      [fd](Napi::Env env, int status, int) -> std::optional<std::vector<napi_value>> {
        if (status < 0) return std::nullopt;
        std::optional<uint64_t> count = readEventfd(fd);
        if (!count) return std::nullopt;
        return std::vector<napi_value>{Napi::BigInt::New(env, *count)};
      });
  return JsFdWatch::wrap(env, std::move(watch));
}

}  // namespace hako
