#pragma once
// JSON as real checkpoints write it: Python's json module emits bare Infinity, -Infinity and NaN,
// and newer transformers writes {"__float__": "Infinity"}. Both must load.
#include <nlohmann/json.hpp>
#include <string>

namespace mamba {

// Deepest nesting of arrays and objects accepted. Real configs, tokenizers and headers stay below 10;
// the limit keeps a hostile file from exhausting the stack of the recursive walks (copy, dump, compare).
constexpr int kMaxJsonDepth = 64;

// Parses `text`; bare Infinity/-Infinity/NaN outside strings become {"__float__": "..."} objects.
// Throws mamba::Error naming `origin` on malformed JSON or nesting deeper than kMaxJsonDepth.
nlohmann::json parse_json_lenient(const std::string& text, const std::string& origin);
// Strict JSON (no non-finite literals), with the same depth limit and errors.
nlohmann::json parse_json(const std::string& text, const std::string& origin);

// `v` as JSON text for an error message: at most ~60 characters, invalid UTF-8 replaced (never throws).
std::string json_excerpt(const nlohmann::json& v);

// A number, or a {"__float__": "Infinity"|"-Infinity"|"NaN"} object, as a double.
// Throws mamba::Error naming `origin` and `field` otherwise.
double json_to_double(const nlohmann::json& v, const std::string& origin, const std::string& field);

// The whole file as bytes (a regular file of at most `max_bytes`; engine/input_file.h). Throws
// mamba::Error "<path>: ..." otherwise.
std::string read_text_file(const std::string& path, uint64_t max_bytes = uint64_t(1) << 30);

}  // namespace mamba
