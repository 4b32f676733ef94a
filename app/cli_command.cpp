#include "app/cli_command.h"

namespace mamba::cli {

CLI::App* Commands::add(const std::string& name, const std::string& description, std::function<int()> run) {
  CLI::App* sub = m_root.add_subcommand(name, description);
  // Unknown arguments are collected, not thrown, so that main() can name the first one in its own words.
  sub->allow_extras();
  m_commands.emplace_back(sub, std::move(run));
  return sub;
}

const std::function<int()>* Commands::selected() const {
  for (const auto& [app, run] : m_commands)
    if (app->parsed()) return &run;
  return nullptr;
}

}  // namespace mamba::cli
