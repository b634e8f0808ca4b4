#include "mount.h"

#include "kvm_error.h"
#include "js_values.h"

#include <sys/mount.h>

#include <cerrno>
#include <string>

namespace hako {

namespace {

std::string toAbsolutePath(Napi::Value value, const char* what) {
  if (!value.IsString()) throw Napi::TypeError::New(value.Env(), std::string(what) + " must be a string");
  std::string path = value.As<Napi::String>().Utf8Value();
  if (path.empty() || path[0] != '/' || path.find('\0') != std::string::npos) {
    throw Napi::TypeError::New(value.Env(), std::string(what) + " must be an absolute path without NUL bytes, got '" + path + "'");
  }
  return path;
}

struct NamedFlag {
  const char* name;
  unsigned long flag;
};

constexpr NamedFlag kMountFlags[] = {
    {"rdonly", MS_RDONLY},   {"nosuid", MS_NOSUID},       {"nodev", MS_NODEV},         {"noexec", MS_NOEXEC},
    {"sync", MS_SYNCHRONOUS}, {"remount", MS_REMOUNT},    {"dirsync", MS_DIRSYNC},     {"noatime", MS_NOATIME},
    {"nodiratime", MS_NODIRATIME}, {"bind", MS_BIND},     {"rec", MS_REC},             {"relatime", MS_RELATIME},
    {"strictatime", MS_STRICTATIME}, {"private", MS_PRIVATE}, {"slave", MS_SLAVE},     {"shared", MS_SHARED},
    {"unbindable", MS_UNBINDABLE},
};

unsigned long toMountFlags(Napi::Value value) {
  Napi::Env env = value.Env();
  if (!value.IsArray()) throw Napi::TypeError::New(env, "flags must be an array of MS_* flag names");
  Napi::Array names = value.As<Napi::Array>();
  unsigned long flags = 0;
  for (uint32_t i = 0; i < names.Length(); i++) {
    Napi::Value item = names.Get(i);
    std::string name = item.IsString() ? item.As<Napi::String>().Utf8Value() : std::string();
    const NamedFlag* found = nullptr;
    for (const NamedFlag& f : kMountFlags) {
      if (name == f.name) found = &f;
    }
    if (found == nullptr) {
      throw Napi::TypeError::New(env, "flags[" + std::to_string(i) + "] must name an MS_* flag (rdonly, nosuid, bind, rec, ...), got '" + name + "'");
    }
    flags |= found->flag;
  }
  return flags;
}

}  // namespace

Napi::Value MountFs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "source must be a string");
  std::string source = info[0].As<Napi::String>().Utf8Value();
  std::string target = toAbsolutePath(info[1], "target");
  if (!info[2].IsString()) throw Napi::TypeError::New(env, "fstype must be a string");
  std::string fstype = info[2].As<Napi::String>().Utf8Value();
  unsigned long flags = toMountFlags(info[3]);
  if (!info[4].IsString()) throw Napi::TypeError::New(env, "data must be a string");
  std::string data = info[4].As<Napi::String>().Utf8Value();
  if (mount(source.c_str(), target.c_str(), fstype.c_str(), flags, data.empty() ? nullptr : data.c_str()) != 0) {
    throwKvmError(env, "mount", errno, fstype + " " + source + " on " + target);
  }
  return env.Undefined();
}

Napi::Value BindMount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string source = toAbsolutePath(info[0], "source");
  std::string target = toAbsolutePath(info[1], "target");
  bool readOnly = toBool(info[2], "readOnly");
  if (mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    throwKvmError(env, "mount(MS_BIND)", errno, source + " on " + target);
  }
  // Flags of a bind mount change only through a remount of it.
  unsigned long flags = MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | (readOnly ? MS_RDONLY : 0);
  if (mount(nullptr, target.c_str(), nullptr, flags, nullptr) != 0) {
    int err = errno;
    umount2(target.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW);
    throwKvmError(env, "mount(MS_REMOUNT)", err, target);
  }
  return env.Undefined();
}

Napi::Value Unmount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string target = toAbsolutePath(info[0], "target");
  if (umount2(target.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0) throwKvmError(env, "umount2", errno, target);
  return env.Undefined();
}

}  // namespace hako
