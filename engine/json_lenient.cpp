#include "engine/json_lenient.h"

#include <cmath>
#include <limits>

#include "engine/error.h"
#include "engine/input_file.h"

namespace mamba {

namespace {

bool is_ident_char(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; }

// Rewrites the three non-finite literals into objects, leaving string contents untouched.
std::string rewrite_nonfinite(const std::string& s) {
  std::string out;
  out.reserve(s.size() + 32);
  bool in_string = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (in_string) {
      out.push_back(c);
      if (c == '\\' && i + 1 < s.size()) out.push_back(s[++i]);
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
      out.push_back(c);
      continue;
    }
    auto match = [&](const char* word) {
      size_t n = std::char_traits<char>::length(word);
      if (s.compare(i, n, word) != 0) return false;
      if (i + n < s.size() && is_ident_char(s[i + n])) return false;
      if (i > 0 && is_ident_char(s[i - 1])) return false;
      return true;
    };
    if (c == '-' && match("-Infinity")) {
      out += R"({"__float__":"-Infinity"})";
      i += 8;
      continue;
    }
    if (match("Infinity")) {
      out += R"({"__float__":"Infinity"})";
      i += 7;
      continue;
    }
    if (match("NaN")) {
      out += R"({"__float__":"NaN"})";
      i += 2;
      continue;
    }
    out.push_back(c);
  }
  return out;
}

// Refuses nesting deeper than kMaxJsonDepth before the parser builds anything.
void check_depth(const std::string& s, const std::string& origin) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth)
        throw Error(origin + ": JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels (at byte " + std::to_string(i) + ")");
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

nlohmann::json parse_unchecked(const std::string& text, const std::string& origin) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for numbers like 1e400
    throw Error(origin + ": not valid JSON (" + e.what() + ")");
  }
}

}  // namespace

// The depth is checked on the text as written: the rewrite nests each non-finite literal one level deeper.
nlohmann::json parse_json_lenient(const std::string& text, const std::string& origin) {
  check_depth(text, origin);
  return parse_unchecked(rewrite_nonfinite(text), origin);
}

nlohmann::json parse_json(const std::string& text, const std::string& origin) {
  check_depth(text, origin);
  return parse_unchecked(text, origin);
}

std::string json_excerpt(const nlohmann::json& v) {
  std::string s = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

double json_to_double(const nlohmann::json& v, const std::string& origin, const std::string& field) {
  if (v.is_number()) return v.get<double>();
  if (v.is_object() && v.size() == 1 && v.contains("__float__") && v["__float__"].is_string()) {
    const std::string w = v["__float__"].get<std::string>();
    if (w == "Infinity" || w == "inf") return std::numeric_limits<double>::infinity();
    if (w == "-Infinity" || w == "-inf") return -std::numeric_limits<double>::infinity();
    if (w == "NaN" || w == "nan") return std::numeric_limits<double>::quiet_NaN();
  }
  throw Error(origin + ": field '" + field + "' must be a number, got " + json_excerpt(v));
}

std::string read_text_file(const std::string& path, uint64_t max_bytes) { return read_file(path, max_bytes); }

}  // namespace mamba
