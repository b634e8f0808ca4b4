#include "random.h"

#include "js_values.h"
#include "kvm_error.h"

#include <sys/random.h>

#include <cerrno>

namespace hako {

namespace {

constexpr uint64_t kMaxSafeInteger = (uint64_t{1} << 53) - 1;

}  // namespace

void GetRandom(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArrayBuffer()) throw Napi::TypeError::New(env, "target must be an ArrayBuffer");
  Napi::ArrayBuffer target = info[0].As<Napi::ArrayBuffer>();
  uint64_t offset = toUint(info[1], "offset", kMaxSafeInteger);
  uint64_t length = toUint(info[2], "length", kMaxSafeInteger);
  uint64_t size = target.ByteLength();
  if (offset > size || length > size - offset) {
    throw Napi::RangeError::New(env, "getRandom: offset " + hex(offset) + " + length " + hex(length) +
                                         " is outside the buffer's " + hex(size) + " bytes");
  }
  auto* at = static_cast<uint8_t*>(target.Data()) + offset;
  // Reads of more than 256 bytes may return short (or EINTR) when a signal arrives: go on until full.
  while (length > 0) {
    ssize_t n = getrandom(at, length, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throwKvmError(env, "getrandom", errno);
    }
    at += n;
    length -= static_cast<uint64_t>(n);
  }
}

}  // namespace hako
