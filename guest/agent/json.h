// A small JSON document model: the agent parses the host's OCI config.json / process.json, sets the few keys it
// owns (root.path, linux.cgroupsPath, process.terminal) and writes the document back for crun. Numbers are kept as
// their source text, so values pass through unchanged.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct Json {
  enum class Type { Null, Bool, Number, String, Array, Object };
  Type type = Type::Null;
  bool boolean = false;
  std::string text;  // String: the decoded UTF-8 value; Number: the literal as written
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> members;

  static Json string(std::string_view s) {
    Json j;
    j.type = Type::String;
    j.text = s;
    return j;
  }
  static Json from_bool(bool b) {
    Json j;
    j.type = Type::Bool;
    j.boolean = b;
    return j;
  }
  static Json object() {
    Json j;
    j.type = Type::Object;
    return j;
  }
  bool is_object() const { return type == Type::Object; }
  // The member named `key` of an object, or nullptr.
  Json* find(std::string_view key);
  const Json* find(std::string_view key) const { return const_cast<Json*>(this)->find(key); }
  // Sets member `key` of an object (replacing every member of that name) and returns it.
  Json& set(std::string_view key, Json value);
};

// Parses a whole document (RFC 8259; nesting depth at most 64); on failure `error` says what and at which byte.
bool parse_json(std::string_view in, Json& out, std::string& error);
std::string to_json(const Json& j);
