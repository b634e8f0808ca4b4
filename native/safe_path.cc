#include "safe_path.h"

#include "js_values.h"
#include "kvm_error.h"
#include "unique_fd.h"

#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <string>

namespace hako {

namespace {

// openat2 fails with EAGAIN when a rename or mount elsewhere raced with a `..`
// it was resolving (it cannot then prove the result stayed inside). Retrying
// is safe; giving up after a few tries keeps a hostile renamer from holding us.
constexpr int kRaceRetries = 32;

std::string toPath(Napi::Value value, const char* what) {
  if (!value.IsString()) throw Napi::TypeError::New(value.Env(), std::string(what) + " must be a string");
  std::string path = value.As<Napi::String>().Utf8Value();
  if (path.find('\0') != std::string::npos) {
    throw Napi::TypeError::New(value.Env(), std::string(what) + " must not contain a NUL byte");
  }
  return path;
}

/** One path component: the *at calls below must not resolve anything themselves. */
std::string toName(Napi::Value value, const char* what) {
  std::string name = toPath(value, what);
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
    throw Napi::TypeError::New(value.Env(), std::string(what) + " must be one path component (no '/', '.' or '..'), got '" +
                                                name + "'");
  }
  return name;
}

int toFd(Napi::Value value, const char* what) { return static_cast<int>(toUint(value, what, INT_MAX)); }

uint64_t resolveFlags(Napi::Value value) {
  std::string mode = toPath(value, "resolve");
  // Magic links (/proc/<pid>/fd/*, /proc/<pid>/root) jump anywhere: never followed.
  if (mode == "in-root") return RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  if (mode == "beneath") return RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  if (mode == "no-symlinks") return RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;
  throw Napi::TypeError::New(value.Env(), "resolve must be 'in-root', 'beneath' or 'no-symlinks', got '" + mode + "'");
}

}  // namespace

Napi::Value OpenAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int dirFd = toFd(info[0], "dirFd");
  std::string path = toPath(info[1], "path");
  auto flags = static_cast<uint64_t>(toUint(info[2], "flags", UINT32_MAX));
  auto mode = static_cast<uint64_t>(toUint(info[3], "mode", 07777));
  open_how how{};
  how.flags = flags | O_CLOEXEC;
  // openat2, unlike openat, refuses a mode where nothing is created.
  how.mode = (flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE ? mode : 0;
  how.resolve = resolveFlags(info[4]);
  for (int attempt = 0;; attempt++) {
    long fd = syscall(SYS_openat2, dirFd, path.c_str(), &how, sizeof how);
    if (fd >= 0) return Napi::Number::New(env, static_cast<double>(fd));
    if (errno == EINTR || (errno == EAGAIN && attempt < kRaceRetries)) continue;
    if (errno == ENOSYS) throwKvmError(env, "openat2(" + path + ")", ENOSYS, "safe path resolution needs Linux 5.6 or later");
    throwKvmError(env, "openat2(" + path + ")", errno, "relative to fd " + std::to_string(dirFd));
  }
}

Napi::Value MkdirAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int dirFd = toFd(info[0], "dirFd");
  std::string name = toName(info[1], "name");
  auto mode = static_cast<mode_t>(toUint(info[2], "mode", 07777));
  if (mkdirat(dirFd, name.c_str(), mode) == 0) return Napi::Boolean::New(env, true);
  if (errno == EEXIST) return Napi::Boolean::New(env, false);
  throwKvmError(env, "mkdirat(" + name + ")", errno, "in fd " + std::to_string(dirFd));
}

Napi::Value UnlinkAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int dirFd = toFd(info[0], "dirFd");
  std::string name = toName(info[1], "name");
  bool directory = toBool(info[2], "isDirectory");
  if (unlinkat(dirFd, name.c_str(), directory ? AT_REMOVEDIR : 0) != 0) {
    throwKvmError(env, "unlinkat(" + name + ")", errno, "in fd " + std::to_string(dirFd));
  }
  return env.Undefined();
}

Napi::Value RenameAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int oldDirFd = toFd(info[0], "oldDirFd");
  std::string oldName = toName(info[1], "oldName");
  int newDirFd = toFd(info[2], "newDirFd");
  std::string newName = toName(info[3], "newName");
  bool noReplace = toBool(info[4], "noReplace");
  if (renameat2(oldDirFd, oldName.c_str(), newDirFd, newName.c_str(), noReplace ? RENAME_NOREPLACE : 0) != 0) {
    throwKvmError(env, "renameat2(" + oldName + ", " + newName + ")", errno,
                  "from fd " + std::to_string(oldDirFd) + " to fd " + std::to_string(newDirFd));
  }
  return env.Undefined();
}

Napi::Value ReadlinkAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = toFd(info[0], "fd");
  // A link target is at most PATH_MAX - 1 bytes; a full buffer would mean it was cut.
  char target[PATH_MAX];
  ssize_t n = readlinkat(fd, "", target, sizeof target);
  if (n < 0) throwKvmError(env, "readlinkat", errno, "fd " + std::to_string(fd) + " (an O_PATH | O_NOFOLLOW symlink)");
  if (static_cast<size_t>(n) == sizeof target) throwKvmError(env, "readlinkat", ENAMETOOLONG, "fd " + std::to_string(fd));
  return Napi::String::New(env, target, static_cast<size_t>(n));
}

}  // namespace hako
