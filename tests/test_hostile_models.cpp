// The malformed-model suite (tests/hostile_models.h), each broken folder opened through the command line as a
// user would (mamba-cli info -m DIR). Every one must fail with exit status 1 and exactly one line on
// stderr that names the file at fault and the problem — no crash, no hang, no allocation from a size the
// file does not back.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "tests/hostile_models.h"
#include "tests/test_util.h"

namespace {
namespace fs = std::filesystem;
using mamba::test::TempDir;
namespace hostile = mamba::test::hostile;
using hostile::Case;
}  // namespace

TEST(HostileModels, EachFailsWithOneLineNamingFileAndProblem) {
  const std::vector<Case> all = hostile::cases();
  ASSERT_GE(all.size(), 30u);
  TempDir tmp;
  int i = 0;
  for (const Case& c : all) {
    SCOPED_TRACE(c.name);
    const fs::path dir = tmp.path / ("case" + std::to_string(i++));
    hostile::make(c, dir);
    // `timeout`: a regression that blocks (a FIFO opened for reading) fails here instead of hanging ctest.
    const auto r = mamba::test::run_command("timeout 60 " + std::string(MAMBA_CLI_PATH) + " info -m '" + dir.string() + "'");
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line on stderr: " << r.err;
    for (const std::string& part : c.expect) EXPECT_NE(r.err.find(part), std::string::npos) << "expected '" << part << "' in: " << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
  RecordProperty("cases", int(all.size()));
}

TEST(HostileModels, TheGoodFolderLoads) {
  // The suite's base, rebuilt by the same code, must load: otherwise every case above proves nothing.
  TempDir tmp;
  hostile::make_good(tmp.path / "good");
  const auto r = mamba::test::run_command(std::string(MAMBA_CLI_PATH) + " info -m " + (tmp.path / "good").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"layers\": 2"), std::string::npos) << r.out;
}
