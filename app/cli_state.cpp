// mamba-cli state info FILE: what a snapshot file holds, as JSON (docs/SNAPSHOTS.md).
#include <nlohmann/json.hpp>

#include "app/cli_command.h"
#include "app/cli_common.h"
#include "engine/snapshot.h"

namespace mamba::cli {

void add_state(Commands& commands) {
  auto file = std::make_shared<std::string>();
  CLI::App* sub =
      commands.add("state", "snapshot files: `state info FILE` prints one's header (model id, tokens, sizes, version) as JSON", [file] {
        if (file->empty()) throw UsageError("state needs a subcommand: state info FILE");
        write_stdout(snapshot_info_file(*file).dump(2) + "\n");
        return 0;
      });
  sub->require_subcommand(1);
  CLI::App* info = sub->add_subcommand("info", "a snapshot's header and file frame as JSON");
  info->add_option("FILE", *file, "the snapshot file")->required();
}

}  // namespace mamba::cli
