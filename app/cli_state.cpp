// state: what a snapshot file holds.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "app/cli_common.h"
#include "engine/snapshot.h"

namespace mamba::cli {

int run_state(int argc, char** argv) {
  if (argc < 2) throw UsageError("state needs a subcommand: state info FILE");
  const std::string sub = argv[1];
  if (sub != "info") throw UsageError("unknown state subcommand '" + sub + "' (expected: info FILE)");
  if (argc != 3) throw UsageError("state info takes one snapshot file");
  std::printf("%s\n", snapshot_info_file(argv[2]).dump(2).c_str());
  return 0;
}

}  // namespace mamba::cli
