#include "proto.h"

namespace {

// Reads one varint at p (advancing it); false if the input ends first or it is longer than 10 bytes.
bool read_varint(const char*& p, const char* end, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (p == end) return false;
    uint8_t b = uint8_t(*p++);
    v |= uint64_t(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

}  // namespace

bool Reader::next(Field& f) {
  if (p_ == end_ || error_) return false;
  uint64_t key;
  if (!read_varint(p_, end_, key)) return error_ = "truncated field key", false;
  f.number = uint32_t(key >> 3);
  f.wire = uint8_t(key & 7);
  if (key >> 3 == 0 || key >> 3 > 0x1fffffff) return error_ = "invalid field number", false;
  switch (f.wire) {
    case wire::kVarint:
      if (!read_varint(p_, end_, f.value)) return error_ = "truncated varint", false;
      return true;
    case wire::kLen: {
      uint64_t len;
      if (!read_varint(p_, end_, len)) return error_ = "truncated length", false;
      if (len > uint64_t(end_ - p_)) return error_ = "length-delimited field runs past the end of the message", false;
      f.bytes = std::string_view(p_, len);
      p_ += len;
      return true;
    }
    case wire::kFixed64:
    case wire::kFixed32: {
      size_t n = f.wire == wire::kFixed64 ? 8 : 4;
      if (n > size_t(end_ - p_)) return error_ = "truncated fixed-width field", false;
      f.value = 0;
      for (size_t i = 0; i < n; i++) f.value |= uint64_t(uint8_t(p_[i])) << (8 * i);
      p_ += n;
      return true;
    }
    default:
      return error_ = "unsupported wire type (groups are not used)", false;
  }
}

void Writer::varint(uint64_t v) {
  while (v >= 0x80) {
    out.push_back(char(v | 0x80));
    v >>= 7;
  }
  out.push_back(char(v));
}
