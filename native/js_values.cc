#include "js_values.h"

#include <cmath>

namespace hako {

namespace {

// Shows primitives as they are and other values by type, without calling user code.
std::string describe(Napi::Value value) {
  switch (value.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return value.As<Napi::Boolean>().Value() ? "true" : "false";
    case napi_number: {
      double d = value.As<Napi::Number>().DoubleValue();
      if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 9007199254740992.0) {
        return std::to_string(static_cast<int64_t>(d));
      }
      return std::to_string(d);
    }
    case napi_bigint: {
      bool lossless = false;
      int64_t v = value.As<Napi::BigInt>().Int64Value(&lossless);
      return lossless ? std::to_string(v) + "n" : "a BigInt outside 64 bits";
    }
    case napi_string: return "a string";
    case napi_symbol: return "a symbol";
    case napi_function: return "a function";
    default: return "an object";
  }
}

[[noreturn]] void fail(Napi::Value value, const std::string& what, const std::string& expected) {
  throw Napi::TypeError::New(value.Env(), what + " must be " + expected + ", got " + describe(value));
}

}  // namespace

uint64_t toUint(Napi::Value value, const std::string& what, uint64_t max) {
  std::string expected = "an integer in [0, " + std::to_string(max) + "]";
  if (!value.IsNumber()) fail(value, what, expected);
  double d = value.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d != std::trunc(d) || d > static_cast<double>(max)) fail(value, what, expected);
  return static_cast<uint64_t>(d);
}

uint64_t toBigUint64(Napi::Value value, const std::string& what) {
  if (!value.IsBigInt()) fail(value, what, "a BigInt in [0n, 2n**64n)");
  bool lossless = false;
  uint64_t v = value.As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) fail(value, what, "a BigInt in [0n, 2n**64n)");
  return v;
}

bool toBool(Napi::Value value, const std::string& what) {
  if (!value.IsBoolean()) fail(value, what, "a boolean");
  return value.As<Napi::Boolean>().Value();
}

Napi::Object toObject(Napi::Value value, const std::string& what) {
  if (!value.IsObject()) fail(value, what, "an object");
  return value.As<Napi::Object>();
}

Napi::Function toFunction(Napi::Value value, const std::string& what) {
  if (!value.IsFunction()) fail(value, what, "a function");
  return value.As<Napi::Function>();
}

uint64_t fieldUint(Napi::Object object, const char* key, const std::string& what, uint64_t max) {
  return toUint(object.Get(key), what + "." + key, max);
}

uint64_t fieldBigUint64(Napi::Object object, const char* key, const std::string& what) {
  return toBigUint64(object.Get(key), what + "." + key);
}

}  // namespace hako
