// Protocol-buffers wire format, the subset the agent needs: varint and length-delimited fields (plus skipping fixed32
// and fixed64 ones). Field numbers and kinds come from schema.h, generated from agent.proto; get<>/put<> check at
// compile time that the C++ type used for a field matches its kind in the proto.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

enum class Kind : uint8_t { Bool, Int32, Int64, Uint32, Uint64, String, Bytes, Message };

struct FieldSpec {
  uint32_t number;
  Kind kind;
  bool repeated;
  const char* name;  // "Message.field", for error messages
};

namespace wire {
constexpr uint8_t kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5;
}

// One field as read from the wire: `value` for varints, `bytes` for length-delimited fields.
struct Field {
  uint32_t number = 0;
  uint8_t wire = 0;
  uint64_t value = 0;
  std::string_view bytes;
};

// Iterates the fields of one encoded message; every length is checked against the input.
class Reader {
 public:
  explicit Reader(std::string_view in) : p_(in.data()), end_(in.data() + in.size()) {}
  // False at the end of input or on malformed input (then error() is set).
  bool next(Field& f);
  const char* error() const { return error_; }

 private:
  const char* p_;
  const char* end_;
  const char* error_ = nullptr;
};

class Writer {
 public:
  std::string out;
  void varint(uint64_t v);
  void tag(uint32_t number, uint8_t wire) { varint(uint64_t{number} << 3 | wire); }
  void len_field(uint32_t number, std::string_view bytes) {
    tag(number, wire::kLen);
    varint(bytes.size());
    out.append(bytes);
  }
};

// Decoding error: names the field and what was wrong, for an INVALID_ARGUMENT status.
struct DecodeError {
  std::string message;
  bool fail(const FieldSpec& f, const char* what) {
    message = std::string(f.name) + ": " + what;
    return false;
  }
};

// Reads `f` (whose number is F.number) into `out`. Proto3 semantics: a later occurrence of a scalar replaces an earlier
// one; values out of the field's range are rejected rather than truncated.
template <const FieldSpec& F, class T>
bool get(const Field& f, T& out, DecodeError& err) {
  if constexpr (F.kind == Kind::String || F.kind == Kind::Bytes) {
    static_assert(std::is_same_v<T, std::string>);
    if (f.wire != wire::kLen) return err.fail(F, "expected a length-delimited field");
    out.assign(f.bytes);
    return true;
  } else if constexpr (F.repeated) {
    static_assert(!F.repeated, "no request has repeated fields: decoding them is not implemented");
  } else {
    if (f.wire != wire::kVarint) return err.fail(F, "expected a varint field");
    if constexpr (F.kind == Kind::Bool) {
      static_assert(std::is_same_v<T, bool>);
      out = f.value != 0;
    } else if constexpr (F.kind == Kind::Uint32) {
      static_assert(std::is_same_v<T, uint32_t>);
      if (f.value > UINT32_MAX) return err.fail(F, "value out of range for uint32");
      out = uint32_t(f.value);
    } else if constexpr (F.kind == Kind::Int32) {
      static_assert(std::is_same_v<T, int32_t>);
      int64_t v = int64_t(f.value);  // negative int32 values are sign-extended to 10-byte varints
      if (v < INT32_MIN || v > INT32_MAX) return err.fail(F, "value out of range for int32");
      out = int32_t(v);
    } else if constexpr (F.kind == Kind::Uint64) {
      static_assert(std::is_same_v<T, uint64_t>);
      out = f.value;
    } else if constexpr (F.kind == Kind::Int64) {
      static_assert(std::is_same_v<T, int64_t>);
      out = int64_t(f.value);
    } else {
      static_assert(F.kind != Kind::Message, "decode embedded messages with decode()");
    }
    return true;
  }
}

// Writes `v` as field F; proto3 leaves out default values (0, false, empty).
template <const FieldSpec& F, class T>
void put(Writer& w, const T& v) {
  if constexpr (F.kind == Kind::String || F.kind == Kind::Bytes) {
    static_assert(std::is_same_v<T, std::string> || std::is_same_v<T, std::string_view>);
    if (!v.empty()) w.len_field(F.number, v);
  } else if constexpr (F.repeated) {
    static_assert(F.kind == Kind::Uint32 && std::is_same_v<T, std::vector<uint32_t>>);
    if (v.empty()) return;
    Writer packed;
    for (uint32_t x : v) packed.varint(x);
    w.len_field(F.number, packed.out);
  } else {
    if constexpr (F.kind == Kind::Bool) static_assert(std::is_same_v<T, bool>);
    if constexpr (F.kind == Kind::Uint32) static_assert(std::is_same_v<T, uint32_t>);
    if constexpr (F.kind == Kind::Int32) static_assert(std::is_same_v<T, int32_t>);
    if constexpr (F.kind == Kind::Uint64) static_assert(std::is_same_v<T, uint64_t>);
    if constexpr (F.kind == Kind::Int64) static_assert(std::is_same_v<T, int64_t>);
    static_assert(F.kind != Kind::Message, "encode embedded messages with len_field()");
    if (v == T{}) return;
    w.tag(F.number, wire::kVarint);
    w.varint(uint64_t(int64_t(v)));  // int32/int64 negatives: 10-byte two's complement, as protobuf does
  }
}
