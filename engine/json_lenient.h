#pragma once
// JSON as real checkpoints write it: Python's json module emits bare Infinity, -Infinity and NaN,
// and newer transformers writes {"__float__": "Infinity"}. Both must load.
#include <nlohmann/json.hpp>
#include <string>

namespace mamba {

// Parses `text`; bare Infinity/-Infinity/NaN outside strings become {"__float__": "..."} objects.
// Throws mamba::Error naming `origin` on malformed JSON.
nlohmann::json parse_json_lenient(const std::string& text, const std::string& origin);

// A number, or a {"__float__": "Infinity"|"-Infinity"|"NaN"} object, as a double.
// Throws mamba::Error naming `origin` and `field` otherwise.
double json_to_double(const nlohmann::json& v, const std::string& origin, const std::string& field);

// The whole file as bytes. Throws mamba::Error "<path>: cannot open file" or "<path>: read error".
std::string read_text_file(const std::string& path);

}  // namespace mamba
