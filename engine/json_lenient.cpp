#include "engine/json_lenient.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "engine/error.h"

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

}  // namespace

nlohmann::json parse_json_lenient(const std::string& text, const std::string& origin) {
  try {
    return nlohmann::json::parse(rewrite_nonfinite(text));
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(origin + ": not valid JSON (" + e.what() + ")");
  }
}

double json_to_double(const nlohmann::json& v, const std::string& origin, const std::string& field) {
  if (v.is_number()) return v.get<double>();
  if (v.is_object() && v.size() == 1 && v.contains("__float__") && v["__float__"].is_string()) {
    const std::string w = v["__float__"].get<std::string>();
    if (w == "Infinity" || w == "inf") return std::numeric_limits<double>::infinity();
    if (w == "-Infinity" || w == "-inf") return -std::numeric_limits<double>::infinity();
    if (w == "NaN" || w == "nan") return std::numeric_limits<double>::quiet_NaN();
  }
  throw Error(origin + ": field '" + field + "' must be a number, got " + v.dump());
}

std::string read_text_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot open file");
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) throw Error(path + ": read error");
  return ss.str();
}

}  // namespace mamba
