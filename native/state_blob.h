// Fixed-size KVM state structs (vCPU events, XSAVE, PIT, clock...) cross to
// JS as raw Buffers holding exactly the kernel struct: snapshots store them
// as they are, and the kernel validates their contents on restore.
#pragma once

#include "kvm_error.h"

#include <napi.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <type_traits>

namespace hako {

template <typename T>
Napi::Buffer<uint8_t> blobToJs(Napi::Env env, const T& state) {
  static_assert(std::is_trivially_copyable_v<T>, "only plain kernel structs");
  return Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(&state), sizeof state);
}

/**
 * Copies a Buffer/Uint8Array of exactly sizeof(T) bytes. Throws a TypeError
 * for other values and a KvmError (EINVAL, `syscall`) naming `what` and the
 * expected size for a wrong length.
 */
template <typename T>
T blobFromJs(Napi::Env env, Napi::Value value, const std::string& syscall, const std::string& what) {
  static_assert(std::is_trivially_copyable_v<T>, "only plain kernel structs");
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(env, what + " must be a Buffer or Uint8Array");
  }
  Napi::Uint8Array bytes = value.As<Napi::Uint8Array>();
  if (bytes.ByteLength() != sizeof(T)) {
    throwKvmError(env, syscall, EINVAL,
                  what + " must be " + std::to_string(sizeof(T)) + " bytes, got " + std::to_string(bytes.ByteLength()));
  }
  T state;
  std::memcpy(&state, bytes.Data(), sizeof state);
  return state;
}

}  // namespace hako
