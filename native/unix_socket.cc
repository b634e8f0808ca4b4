#include "unix_socket.h"

#include "js_values.h"
#include "kvm_error.h"
#include "unique_fd.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <string>

namespace hako {

namespace {

constexpr int kBacklog = 128;

std::string toText(Napi::Value value, const char* what) {
  if (!value.IsString()) throw Napi::TypeError::New(value.Env(), std::string(what) + " must be a string");
  return value.As<Napi::String>().Utf8Value();
}

/** The sockaddr for `path`; throws ENAMETOOLONG (sun_path holds 107 bytes and a NUL) or EINVAL (empty, NUL inside). */
sockaddr_un address(Napi::Env env, const std::string& syscall, const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.find('\0') != std::string::npos) {
    throwKvmError(env, syscall, EINVAL, "a socket path must be non-empty and contain no NUL byte");
  }
  if (path.size() >= sizeof addr.sun_path) {
    throwKvmError(env, syscall + "(" + path + ")", ENAMETOOLONG,
                  "a Unix socket path holds at most " + std::to_string(sizeof addr.sun_path - 1) + " bytes, this one has " +
                      std::to_string(path.size()));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

UniqueFd newSocket(Napi::Env env) {
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) throwKvmError(env, "socket(AF_UNIX)", errno);
  return fd;
}

/** connect(2) to `addr`; 0 or errno. A Unix connect never returns EINPROGRESS, only EAGAIN when the backlog is full. */
int connectTo(int fd, const sockaddr_un& addr) {
  int rc;
  do {
    rc = connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  } while (rc < 0 && errno == EINTR);
  return rc == 0 ? 0 : errno;
}

/** Removes a socket file nothing listens on any more; throws if `path` is in use or not a socket. */
void removeStaleSocket(Napi::Env env, const std::string& path, const sockaddr_un& addr) {
  struct stat st{};
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    throwKvmError(env, "lstat(" + path + ")", errno);
  }
  if (!S_ISSOCK(st.st_mode)) throwKvmError(env, "bind(" + path + ")", EEXIST, "the path exists and is not a socket");
  UniqueFd probe = newSocket(env);
  int err = connectTo(probe.get(), addr);
  if (err == 0 || err == EAGAIN) throwKvmError(env, "bind(" + path + ")", EADDRINUSE, "another process listens on it");
  if (err != ECONNREFUSED) throwKvmError(env, "connect(" + path + ")", err, "while checking for a stale socket");
  if (unlink(path.c_str()) != 0 && errno != ENOENT) throwKvmError(env, "unlink(" + path + ")", errno);
}

}  // namespace

Napi::Value UnixListen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = toText(info[0], "path");
  sockaddr_un addr = address(env, "bind", path);
  removeStaleSocket(env, path, addr);
  UniqueFd fd = newSocket(env);
  if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    throwKvmError(env, "bind(" + path + ")", errno);
  }
  if (listen(fd.get(), kBacklog) != 0) {
    int err = errno;
    unlink(path.c_str());
    throwKvmError(env, "listen(" + path + ")", err);
  }
  return Napi::Number::New(env, fd.release());
}

Napi::Value UnixAccept(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int listener = static_cast<int>(toUint(info[0], "fd", INT_MAX));
  for (;;) {
    int fd = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) return Napi::Number::New(env, fd);
    if (errno == EINTR) continue;
    // ECONNABORTED: the client gave up before we took it; as good as none waiting.
    if (errno == EAGAIN || errno == ECONNABORTED) return env.Null();
    throwKvmError(env, "accept4", errno, "listening fd " + std::to_string(listener));
  }
}

Napi::Value UnixConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = toText(info[0], "path");
  sockaddr_un addr = address(env, "connect", path);
  UniqueFd fd = newSocket(env);
  int err = connectTo(fd.get(), addr);
  if (err != 0) throwKvmError(env, "connect(" + path + ")", err);
  return Napi::Number::New(env, fd.release());
}

Napi::Value ShutdownSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(toUint(info[0], "fd", INT_MAX));
  std::string how = toText(info[1], "how");
  int mode = how == "read" ? SHUT_RD : how == "write" ? SHUT_WR : how == "both" ? SHUT_RDWR : -1;
  if (mode < 0) throw Napi::TypeError::New(env, "how must be 'read', 'write' or 'both', got '" + how + "'");
  if (shutdown(fd, mode) != 0 && errno != ENOTCONN) throwKvmError(env, "shutdown", errno, "fd " + std::to_string(fd));
  return env.Undefined();
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(toUint(info[0], "fd", INT_MAX));
  // Not retried on EINTR: on Linux the fd is released either way.
  if (close(fd) != 0 && errno != EINTR) throwKvmError(env, "close", errno, "fd " + std::to_string(fd));
  return env.Undefined();
}

}  // namespace hako
