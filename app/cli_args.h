#pragma once
// Minimal flag parser for mamba-cli: "--flag value", "-f value", and boolean switches.
#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace mamba::cli {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Args {
 public:
  // `valued`: flags that take a value; `switches`: flags that do not. Aliases map short to long names.
  Args(int argc, char** argv, const std::set<std::string>& valued, const std::set<std::string>& switches,
       const std::map<std::string, std::string>& aliases = {});
  bool has(const std::string& flag) const { return m_values.count(flag) > 0; }
  std::string str(const std::string& flag, const std::string& fallback = "") const;
  int64_t integer(const std::string& flag, int64_t fallback) const;
  double number(const std::string& flag, double fallback) const;
  std::vector<int32_t> ids(const std::string& flag) const;  // "1,2,3"

 private:
  std::map<std::string, std::string> m_values;
};

std::vector<int32_t> parse_ids(const std::string& text);

}  // namespace mamba::cli
