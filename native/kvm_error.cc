#include "kvm_error.h"

#include <cstdio>
#include <cstring>

namespace hako {

std::string errnoName(int err) {
  const char* name = strerrorname_np(err);
  if (name != nullptr) return name;
  std::string number = "E";  // built in two steps: GCC 12 misreports "E" + std::string as overlapping
  number += std::to_string(err);
  return number;
}

std::string describeErrno(int err) {
  return errnoName(err) + " (" + strerror(err) + ")";
}

std::string hex(uint64_t value) {
  char buffer[24];
  std::snprintf(buffer, sizeof buffer, "0x%llx", static_cast<unsigned long long>(value));
  return buffer;
}

void throwKvmError(Napi::Env env, const std::string& syscall, int err, const std::string& why) {
  std::string message = syscall + ": " + describeErrno(err) + (why.empty() ? "" : ": " + why);
  Napi::Error error = Napi::Error::New(env, message);
  Napi::Object object = error.Value();
  object.Set("code", errnoName(err));
  object.Set("errno", err);
  object.Set("syscall", syscall);
  throw error;
}

}  // namespace hako
