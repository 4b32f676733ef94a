#pragma once
// The options several mamba-cli subcommands share, declared on a CLI11 app, and the id-list parser.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace mamba::cli {

// A command line that asks for something impossible: mamba-cli exits 2 with the message.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "1,2,3" (spaces around the commas allowed); `flag` names the option in the error.
std::vector<int32_t> parse_ids(const std::string& text, const std::string& flag = "--ids");

// Refuses a value that starts with '-' ("must be >= 0"); CLI11's NonNegativeNumber prints its bound in full.
extern const CLI::Validator NonNegative;

struct ModelArgs {
  std::string dir;  // -m DIR; not given: the embedded default model
  CLI::Option* option = nullptr;
  bool given() const { return option && option->count() > 0; }
};
void add_model_option(CLI::App* sub, ModelArgs& m);

struct DeviceArgs {
  std::string device = "cpu";
  std::string dtype;  // empty: bf16 on cuda, f32 on cpu
  int threads = 0;    // 0: all cores
  std::string scan = "chunked";
};
// --device, --dtype, --threads; with `scan`, also --scan.
void add_device_options(CLI::App* sub, DeviceArgs& d, bool scan);

struct PromptArgs {
  std::string text, ids;
  CLI::Option* text_option = nullptr;
  CLI::Option* ids_option = nullptr;
};
// -i TEXT and --ids 1,2,3 (prompt_ids() refuses both at once).
void add_prompt_options(CLI::App* sub, PromptArgs& p);

}  // namespace mamba::cli
