#include "json.h"

#include <cstdint>

namespace {

constexpr int kMaxDepth = 64;

class Parser {
 public:
  explicit Parser(std::string_view in) : in_(in) {}

  bool document(Json& out, std::string& error) {
    bool ok = value(out, 0) && (skip_space(), pos_ == in_.size() || fail("unexpected data after the document"));
    if (!ok) error = error_ + " at byte " + std::to_string(pos_);
    return ok;
  }

 private:
  bool fail(const char* what) {
    if (error_.empty()) error_ = what;
    return false;
  }
  void skip_space() {
    while (pos_ < in_.size() && (in_[pos_] == ' ' || in_[pos_] == '\t' || in_[pos_] == '\n' || in_[pos_] == '\r')) pos_++;
  }
  bool literal(std::string_view word) {
    if (in_.substr(pos_, word.size()) != word) return fail("invalid literal");
    pos_ += word.size();
    return true;
  }
  bool digits() {
    size_t start = pos_;
    while (pos_ < in_.size() && in_[pos_] >= '0' && in_[pos_] <= '9') pos_++;
    return pos_ > start || fail("expected a digit");
  }

  bool value(Json& out, int depth) {
    if (depth > kMaxDepth) return fail("nesting too deep");
    skip_space();
    if (pos_ == in_.size()) return fail("unexpected end of input");
    char c = in_[pos_];
    if (c == '{') return object(out, depth);
    if (c == '[') return array(out, depth);
    if (c == '"') return out.type = Json::Type::String, string(out.text);
    if (c == 't') return out = Json::from_bool(true), literal("true");
    if (c == 'f') return out = Json::from_bool(false), literal("false");
    if (c == 'n') return out.type = Json::Type::Null, literal("null");
    if (c == '-' || (c >= '0' && c <= '9')) return number(out);
    return fail("unexpected character");
  }

  bool number(Json& out) {
    size_t start = pos_;
    if (in_[pos_] == '-') pos_++;
    if (pos_ < in_.size() && in_[pos_] == '0') {
      pos_++;
    } else if (!digits()) {
      return false;
    }
    if (pos_ < in_.size() && in_[pos_] == '.' && (pos_++, !digits())) return false;
    if (pos_ < in_.size() && (in_[pos_] == 'e' || in_[pos_] == 'E')) {
      pos_++;
      if (pos_ < in_.size() && (in_[pos_] == '+' || in_[pos_] == '-')) pos_++;
      if (!digits()) return false;
    }
    out.type = Json::Type::Number;
    out.text = in_.substr(start, pos_ - start);
    return true;
  }

  bool hex4(uint32_t& v) {
    if (in_.size() - pos_ < 4) return fail("truncated \\u escape");
    v = 0;
    for (int i = 0; i < 4; i++) {
      char c = in_[pos_++];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0) return fail("invalid \\u escape");
      v = v << 4 | uint32_t(d);
    }
    return true;
  }

  static void append_utf8(std::string& s, uint32_t cp) {
    if (cp < 0x80) {
      s += char(cp);
    } else if (cp < 0x800) {
      s += char(0xc0 | cp >> 6);
      s += char(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      s += char(0xe0 | cp >> 12);
      s += char(0x80 | (cp >> 6 & 0x3f));
      s += char(0x80 | (cp & 0x3f));
    } else {
      s += char(0xf0 | cp >> 18);
      s += char(0x80 | (cp >> 12 & 0x3f));
      s += char(0x80 | (cp >> 6 & 0x3f));
      s += char(0x80 | (cp & 0x3f));
    }
  }

  // A string starting at the opening quote; escapes decoded. Raw bytes >= 0x80 pass through as they are.
  bool string(std::string& out) {
    pos_++;
    out.clear();
    for (;;) {
      if (pos_ == in_.size()) return fail("unterminated string");
      char c = in_[pos_++];
      if (c == '"') return true;
      if (uint8_t(c) < 0x20) return fail("control character in string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ == in_.size()) return fail("unterminated string");
      switch (in_[pos_++]) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp;
          if (!hex4(cp)) return false;
          if (cp >= 0xd800 && cp < 0xdc00) {  // high surrogate: a low one must follow
            uint32_t low;
            if (in_.substr(pos_, 2) != "\\u" || (pos_ += 2, !hex4(low)) || low < 0xdc00 || low >= 0xe000)
              return fail("unpaired surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
          } else if (cp >= 0xdc00 && cp < 0xe000) {
            return fail("unpaired surrogate in \\u escape");
          }
          append_utf8(out, cp);
          break;
        }
        default:
          return fail("invalid escape in string");
      }
    }
  }

  bool array(Json& out, int depth) {
    pos_++;
    out.type = Json::Type::Array;
    skip_space();
    if (pos_ < in_.size() && in_[pos_] == ']') return pos_++, true;
    for (;;) {
      out.items.emplace_back();
      if (!value(out.items.back(), depth + 1)) return false;
      skip_space();
      if (pos_ == in_.size()) return fail("unterminated array");
      char c = in_[pos_++];
      if (c == ']') return true;
      if (c != ',') return fail("expected ',' or ']'");
    }
  }

  bool object(Json& out, int depth) {
    pos_++;
    out.type = Json::Type::Object;
    skip_space();
    if (pos_ < in_.size() && in_[pos_] == '}') return pos_++, true;
    for (;;) {
      skip_space();
      if (pos_ == in_.size() || in_[pos_] != '"') return fail("expected a member name");
      out.members.emplace_back();
      if (!string(out.members.back().first)) return false;
      skip_space();
      if (pos_ == in_.size() || in_[pos_++] != ':') return fail("expected ':'");
      if (!value(out.members.back().second, depth + 1)) return false;
      skip_space();
      if (pos_ == in_.size()) return fail("unterminated object");
      char c = in_[pos_++];
      if (c == '}') return true;
      if (c != ',') return fail("expected ',' or '}'");
    }
  }

  std::string_view in_;
  size_t pos_ = 0;
  std::string error_;
};

void write_string(std::string& out, const std::string& s) {
  static const char hex[] = "0123456789abcdef";
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (uint8_t(c) < 0x20) {
      out += "\\u00";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += c;
    }
  }
  out += '"';
}

void write(std::string& out, const Json& j) {
  switch (j.type) {
    case Json::Type::Null: out += "null"; break;
    case Json::Type::Bool: out += j.boolean ? "true" : "false"; break;
    case Json::Type::Number: out += j.text; break;
    case Json::Type::String: write_string(out, j.text); break;
    case Json::Type::Array:
      out += '[';
      for (size_t i = 0; i < j.items.size(); i++) {
        if (i) out += ',';
        write(out, j.items[i]);
      }
      out += ']';
      break;
    case Json::Type::Object:
      out += '{';
      for (size_t i = 0; i < j.members.size(); i++) {
        if (i) out += ',';
        write_string(out, j.members[i].first);
        out += ':';
        write(out, j.members[i].second);
      }
      out += '}';
      break;
  }
}

}  // namespace

Json* Json::find(std::string_view key) {
  for (auto& [k, v] : members)
    if (k == key) return &v;
  return nullptr;
}

Json& Json::set(std::string_view key, Json value) {
  std::erase_if(members, [&](const auto& m) { return m.first == key; });
  members.emplace_back(std::string(key), std::move(value));
  return members.back().second;
}

bool parse_json(std::string_view in, Json& out, std::string& error) {
  out = Json();
  return Parser(in).document(out, error);
}

std::string to_json(const Json& j) {
  std::string out;
  write(out, j);
  return out;
}
