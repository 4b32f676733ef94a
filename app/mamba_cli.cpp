// mamba-cli: generate, logits, probe, compare, matrix, score, bench, info, tokenize, detokenize, state.
// Exit codes: 0 done (and -h/--help); 2 a usage error; 1 any other error. Errors are one line on stderr.
#include <cstdio>
#include <exception>
#include <new>
#include <string>

#include "app/cli_args.h"
#include "app/cli_command.h"

// Every subcommand, in the order --help lists them; NAME is defined in app/cli_NAME.cpp as add_NAME(Commands&).
#define MAMBA_CLI_COMMANDS(X) \
  X(generate)                 \
  X(logits)                   \
  X(probe)                    \
  X(compare)                  \
  X(matrix)                   \
  X(score)                    \
  X(bench)                    \
  X(info)                     \
  X(tokenize)                 \
  X(detokenize)               \
  X(state)

namespace mamba::cli {
#define MAMBA_CLI_DECLARE(name) void add_##name(Commands&);
MAMBA_CLI_COMMANDS(MAMBA_CLI_DECLARE)
}  // namespace mamba::cli

namespace {

// CLI11's messages end in a period or a newline at times; one line, without either.
std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n') c = ' ';
  while (!s.empty() && (s.back() == ' ' || s.back() == '.')) s.pop_back();
  return s;
}

int fail(const std::string& where, const std::string& what, int code) {
  std::fprintf(stderr, "%s: %s\n", where.c_str(), one_line(what).c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace mamba::cli;
  CLI::App root("mamba-cli: Mamba-2 language models from the command line", "mamba-cli");
  root.footer(
      "Without -m, the model-running commands use the embedded default model. `mamba-cli COMMAND --help` lists a command's "
      "options.\nExit codes: 0 done, 1 an error (one line on stderr), 2 a usage error.");
  root.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  root.allow_extras();  // an unknown command is reported below, in one line
  Commands commands(root);
#define MAMBA_CLI_REGISTER(name) add_##name(commands);
  MAMBA_CLI_COMMANDS(MAMBA_CLI_REGISTER)

  if (argc < 2) {
    std::fputs(root.help().c_str(), stderr);
    return 2;
  }
  std::string where = "mamba-cli";
  try {
    try {
      root.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
      return root.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
      return root.exit(e);
    } catch (const CLI::ParseError& e) {
      for (const CLI::App* sub : root.get_subcommands()) where = "mamba-cli " + sub->get_name();
      return fail(where, e.what(), 2);
    }
    const auto* run = commands.selected();
    if (!run) {
      const auto rest = root.remaining();
      return fail(
          where, rest.empty() ? "no command given (see mamba-cli --help)" : "unknown command '" + rest.front() + "' (see mamba-cli --help)",
          2);
    }
    for (const CLI::App* sub : root.get_subcommands()) {
      where = "mamba-cli " + sub->get_name();
      if (const auto rest = sub->remaining(); !rest.empty()) throw UsageError("unknown argument '" + rest.front() + "'");
    }
    return (*run)();
  } catch (const UsageError& e) {
    return fail(where, e.what(), 2);
  } catch (const std::bad_alloc&) {
    return fail(where, "out of memory", 1);
  } catch (const std::exception& e) {
    return fail(where, e.what(), 1);
  }
}
