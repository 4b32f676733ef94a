// mamba-cli compare: the text through the chunked and recurrent scans (and CUDA per weight dtype) against
// the float64 reference, per layer, on the final states and the logits; timings, FLOPs and a chunk-size
// sweep, as JSON (docs/COMPARE.md).
#include <unistd.h>

#include <cstdio>
#include <sstream>

#include "app/cli_command.h"
#include "app/cli_common.h"
#include "engine/compare.h"
#include "engine/error.h"

namespace mamba::cli {

namespace {

struct CompareArgs {
  ModelArgs model;
  DeviceArgs device;
  PromptArgs prompt;
  int64_t chunk_size = 0;
  std::string sweep;  // "Q1,Q2,..." or "pow2"
  int64_t memory_mib = 0;
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) {
    const auto a = item.find_first_not_of(' '), b = item.find_last_not_of(' ');
    if (a == std::string::npos) throw UsageError("empty item in '" + s + "'");
    out.push_back(item.substr(a, b - a + 1));
  }
  return out;
}

std::vector<int64_t> parse_sweep(const std::string& s, int64_t T) {
  if (s == "pow2") return power_of_two_sweep(T);
  std::vector<int64_t> q;
  for (const std::string& item : split_list(s)) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || v < 1) throw UsageError("--sweep: '" + item + "' is not a chunk size >= 1 (or give pow2)");
    q.push_back(v);
  }
  return q;
}

int run(const CompareArgs& a) {
  Loaded l = load_model(a.model);
  const std::vector<int32_t> ids = prompt_ids(a.prompt, l, true);
  if (ids.empty()) throw UsageError("the prompt encodes to no tokens");
  const std::string& device = a.device.device;
  std::vector<std::string> dtypes;
  if (!a.device.dtype.empty()) dtypes = split_list(a.device.dtype);
  for (const std::string& dt : dtypes) {
    if (dt != "f32" && dt != "bf16" && dt != "f16") throw UsageError("--dtype: '" + dt + "' is not f32, bf16 or f16");
    if (device == "cpu" && dt != "f32") throw UsageError("--dtype " + dt + ": the CPU computes in f32 (give --device cuda)");
  }

  CompareOptions o;
  o.chunk_size = a.chunk_size;
  o.threads = a.device.threads;
  o.runs = default_compare_runs(device, device == "cuda" ? dtypes : std::vector<std::string>{});
  if (!a.sweep.empty()) o.sweep = parse_sweep(a.sweep, static_cast<int64_t>(ids.size()));
  o.sweep_device = device;
  o.sweep_dtype = device == "cuda" ? (dtypes.empty() ? "bf16" : dtypes.front()) : "f32";
  o.memory_limit = uint64_t(a.memory_mib) << 20;
  o.make_backend = [](const std::string& dev, std::shared_ptr<const Model> m, const BackendOptions& bo) {
    return make_backend(dev, std::move(m), bo);
  };
  if (isatty(STDERR_FILENO)) {
    o.progress = [last = std::string()](double f, const std::string& what) mutable {
      if (what == last && f < 1.0) return;
      last = what;
      std::fprintf(stderr, "\r[%3.0f %%] %-40s", 100.0 * f, what.c_str());
      if (f >= 1.0) std::fputs("\n", stderr);
    };
  }
  const CompareResult r = compare(l.model, ids, o);
  nlohmann::json j;
  j["model"] = {{"dir", l.dir}, {"config", l.model->config.summary()}, {"weights_dtype", l.model->source_dtype}};
  j["ids"] = ids;
  if (!a.prompt.text.empty()) j["prompt"] = a.prompt.text;
  j.update(compare_json(r));
  write_stdout(j.dump(2) + "\n");
  return 0;
}

}  // namespace

void add_compare(Commands& commands) {
  auto a = std::make_shared<CompareArgs>();
  CLI::App* sub = commands.add("compare", "the scans, dtypes and devices against a float64 reference, as JSON (docs/COMPARE.md)",
                               [a] { return run(*a); });
  add_model_option(sub, a->model);
  add_prompt_options(sub, a->prompt);
  sub->add_option("--chunk-size", a->chunk_size, "chunk length of the chunked runs (default: the model's)")
      ->type_name("Q")
      ->check(NonNegative);
  sub->add_option("--sweep", a->sweep, "chunk sizes to time and measure, or pow2 for 1, 2, 4, ..., T")->type_name("Q1,Q2,...|pow2");
  sub->add_option("--memory-limit", a->memory_mib, "MiB the float64 layer outputs may take (default: a quarter of the RAM)")
      ->type_name("MIB")
      ->check(NonNegative);
  // as add_device_options, but --dtype takes a list: the CUDA runs to make
  sub->add_option("--device", a->device.device, "cpu, or cuda to add CUDA runs (and sweep there)")
      ->type_name("D")
      ->capture_default_str()
      ->check(CLI::IsMember({"cpu", "cuda"}));
  sub->add_option("--dtype", a->device.dtype, "weight dtypes of the CUDA runs (default f32,bf16,f16; the sweep takes the first)")
      ->type_name("T1,T2,...");
  sub->add_option("--threads", a->device.threads, "CPU threads (0: all cores)")->type_name("N")->check(CLI::Range(0, 4096));
}

}  // namespace mamba::cli
