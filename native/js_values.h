// Reads JS arguments and object fields into C++ integers, with errors that
// name the bad input and what was expected.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

namespace hako {

/** A Number that is an integer in [0, max]; `max` is at most 2^53 - 1. */
uint64_t toUint(Napi::Value value, const std::string& what, uint64_t max);

/** A BigInt in [0, 2^64). */
uint64_t toBigUint64(Napi::Value value, const std::string& what);

bool toBool(Napi::Value value, const std::string& what);

Napi::Object toObject(Napi::Value value, const std::string& what);

Napi::Function toFunction(Napi::Value value, const std::string& what);

/** `object[key]`, named "<what>.<key>" in errors. */
uint64_t fieldUint(Napi::Object object, const char* key, const std::string& what, uint64_t max);
uint64_t fieldBigUint64(Napi::Object object, const char* key, const std::string& what);

}  // namespace hako
