#pragma once
// How a mamba-cli subcommand plugs in: a file app/cli_NAME.cpp defines add_NAME(Commands&), which
// declares the subcommand's options on a CLI11 app and the function that runs it once the command line
// has been parsed; app/mamba_cli.cpp lists it once (MAMBA_CLI_COMMANDS).
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace mamba::cli {

class Commands {
 public:
  explicit Commands(CLI::App& root) : m_root(root) {}
  // A new subcommand; `run` is called after a successful parse of a command line that names it, and its
  // result is the exit code. The options it reads must outlive the parse (capture them by shared_ptr).
  CLI::App* add(const std::string& name, const std::string& description, std::function<int()> run);
  // The subcommand the parsed command line names, or null.
  const std::function<int()>* selected() const;

 private:
  CLI::App& m_root;
  std::vector<std::pair<CLI::App*, std::function<int()>>> m_commands;
};

}  // namespace mamba::cli
