#pragma once
// The malformed-model suite's cases: handcrafted broken model folders (truncated or oversized headers,
// nested JSON, overlapping tensors, FIFOs, symlink loops, absurd config values, NaN weights, ...), each with
// what its one-line error must say. The command line (tests/test_hostile_models.cpp) and the GUI's worker
// (tests/ui/HardeningTest.cpp) open every one.
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace mamba::test::hostile {

struct Case {
  const char* name;
  std::function<void(const std::filesystem::path& dir)> make;  // builds the broken folder in `dir`
  std::vector<std::string> expect;                             // substrings of the error: the file and the problem
};

std::vector<Case> cases();
// Builds case `c` in `dir` (a folder that does not exist yet).
void make(const Case& c, const std::filesystem::path& dir);
// A folder the suite's cases are variations of, which loads.
void make_good(const std::filesystem::path& dir);

}  // namespace mamba::test::hostile
