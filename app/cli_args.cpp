#include "app/cli_args.h"

#include <charconv>

namespace mamba::cli {

Args::Args(int argc, char** argv, const std::set<std::string>& valued, const std::set<std::string>& switches,
           const std::map<std::string, std::string>& aliases) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (auto it = aliases.find(a); it != aliases.end()) a = it->second;
    if (valued.count(a)) {
      if (i + 1 >= argc) throw UsageError("flag " + a + " needs a value");
      m_values[a] = argv[++i];
    } else if (switches.count(a)) {
      m_values[a] = "1";
    } else {
      throw UsageError("unknown argument '" + a + "'");
    }
  }
}

std::string Args::str(const std::string& flag, const std::string& fallback) const {
  auto it = m_values.find(flag);
  return it == m_values.end() ? fallback : it->second;
}

int64_t Args::integer(const std::string& flag, int64_t fallback) const {
  if (!has(flag)) return fallback;
  const std::string s = str(flag);
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) throw UsageError("flag " + flag + " needs an integer, got '" + s + "'");
  return v;
}

double Args::number(const std::string& flag, double fallback) const {
  if (!has(flag)) return fallback;
  const std::string s = str(flag);
  try {
    size_t used = 0;
    double v = std::stod(s, &used);
    if (used != s.size()) throw std::invalid_argument("trailing");
    return v;
  } catch (const std::exception&) {
    throw UsageError("flag " + flag + " needs a number, got '" + s + "'");
  }
}

std::vector<int32_t> parse_ids(const std::string& text) {
  std::vector<int32_t> out;
  size_t i = 0;
  while (i <= text.size()) {
    size_t j = text.find(',', i);
    if (j == std::string::npos) j = text.size();
    std::string tok = text.substr(i, j - i);
    while (!tok.empty() && tok.front() == ' ') tok.erase(tok.begin());
    while (!tok.empty() && tok.back() == ' ') tok.pop_back();
    int32_t v = 0;
    auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
    if (tok.empty() || ec != std::errc() || p != tok.data() + tok.size() || v < 0)
      throw UsageError("--ids needs comma-separated non-negative integers, got '" + text + "'");
    out.push_back(v);
    i = j + 1;
  }
  return out;
}

std::vector<int32_t> Args::ids(const std::string& flag) const { return parse_ids(str(flag)); }

}  // namespace mamba::cli
