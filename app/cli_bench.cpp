// mamba-cli bench: prefill and decode speed, next to the machine's ceilings measured in the same run.
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>

#include "app/cli_command.h"
#include "app/cli_common.h"
#include "backends/ceilings.h"
#include "engine/clock.h"
#include "engine/error.h"
#include "engine/ssd_matrix.h"

namespace mamba::cli {

namespace {
void progress(bool on, const char* what) {
  if (on) std::fprintf(stderr, "bench: %s...\n", what);
}

struct BenchArgs {
  ModelArgs model;
  DeviceArgs device;
  std::string config;
  int64_t prompt_len = 512, gen = 64, reps = 3;
  uint64_t seed = 1;
  bool json_only = false;
  int64_t matrix = 0;  // > 0: time the SSD matrix view's work instead (capture + M of one head at this T)
};

// What the SSD matrix view does for one layer and head: capture the layer from a CPU forward over T
// tokens, build M in float64, check the duality, rank the off-diagonal blocks. Median of `reps` runs.
int run_matrix(const BenchArgs& a, std::shared_ptr<const Model> model, const std::string& model_name) {
  const Config& c = model->config;
  const int64_t T = a.matrix, layer = c.n_layer / 2;
  std::mt19937 rng(1234);
  std::vector<int32_t> ids(static_cast<size_t>(T));
  for (auto& id : ids) id = static_cast<int32_t>(rng() % static_cast<uint32_t>(std::min<int64_t>(c.vocab_size, 50277)));
  std::vector<double> cap_s, mat_s, dual_s, rank_s;
  double err = 0;
  for (int64_t r = 0; r < a.reps; ++r) {
    const double t0 = now_seconds();
    const LayerCapture cap = capture_layer(model, ids, layer);
    const double t1 = now_seconds();
    const SsdMatrix m = ssd_matrix(cap, c, model->weights.layers[static_cast<size_t>(layer)], 0);
    const double t2 = now_seconds();
    err = duality_rel_err(m, cap, c);
    const double t3 = now_seconds();
    offdiagonal_ranks(m, c.chunk_size);
    const double t4 = now_seconds();
    cap_s.push_back(t1 - t0);
    mat_s.push_back(t2 - t1);
    dual_s.push_back(t3 - t2);
    rank_s.push_back(t4 - t3);
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const nlohmann::json j = {{"model", model_name},
                            {"matrix_tokens", T},
                            {"layer", layer},
                            {"threads", a.device.threads},
                            {"capture_seconds", median(cap_s)},
                            {"matrix_seconds", median(mat_s)},
                            {"ready_seconds", median(cap_s) + median(mat_s)},
                            {"duality_seconds", median(dual_s)},
                            {"ranks_seconds", median(rank_s)},
                            {"duality_rel_err", err}};
  write_stdout(j.dump(2) + "\n");
  return 0;
}

int run(const BenchArgs& a) {
  const bool json_only = a.json_only;
  const std::string& device = a.device.device;
  const int64_t T = a.prompt_len, n_gen = a.gen, reps = a.reps;
  if (T < 1 || n_gen < 1 || reps < 1) throw UsageError("--prompt-len, --gen and --reps must be >= 1");
  if (a.model.given() && !a.config.empty()) throw UsageError("give -m DIR or --config NAME, not both");
  if (a.matrix > 0 && a.device.device != "cpu") throw UsageError("--matrix runs on the CPU, as the SSD matrix view does");

  std::shared_ptr<const Model> model;
  std::string model_name;
  progress(true, "preparing weights");
  if (!a.config.empty()) {
    model = Model::random(Config::preset(a.config), a.seed);
    model_name = "random mamba2-" + a.config;
  } else {
    Loaded l = load_model(a.model);
    model = l.model;
    model_name = l.dir;
  }
  if (a.matrix > 0) return run_matrix(a, model, model_name);
  const Config& c = model->config;
  auto backend = open_backend(a.device, model);

  std::mt19937 rng(1234);
  std::vector<int32_t> prompt(static_cast<size_t>(T));
  for (auto& id : prompt) id = static_cast<int32_t>(rng() % static_cast<uint32_t>(std::min<int64_t>(c.vocab_size, 50277)));
  std::vector<float> logits(static_cast<size_t>(c.vocab_size));

  progress(true, "prefill");
  std::vector<double> prefill_times;
  ForwardOptions fo;
  for (int64_t r = 0; r < reps + 1; ++r) {  // the first run warms up
    backend->reset_state();
    const double t0 = now_seconds();
    backend->forward(prompt, fo, logits.data());
    if (r) prefill_times.push_back(now_seconds() - t0);
  }
  std::sort(prefill_times.begin(), prefill_times.end());
  const double prefill_s = prefill_times[prefill_times.size() / 2];

  progress(true, "decode");
  // Greedy decode as generation runs it (Backend::decode: on a GPU only ids cross the bus, in chains of
  // steps where the backend has them), and one step per call.
  SamplerParams greedy;
  greedy.temperature = 0;
  Sampler sampler(greedy);
  int32_t tok = -1;
  // n tokens from `tok` (-1: from the prefill's logits); returns seconds per token.
  auto decode = [&](int64_t n, bool per_call) {
    const double t0 = now_seconds();
    DecodeRequest req;
    req.steps = per_call ? 1 : n;
    for (int64_t i = 0; i < n; i += req.steps) {
      req.token = tok;
      backend->decode(req, sampler, {}, [&](const DecodedToken& d) {
        tok = d.id;
        return true;
      });
    }
    return (now_seconds() - t0) / double(n);
  };
  decode(2, true);  // warm-up: the first id from the prefill, then one step (captures the decode graph on CUDA)
  const double single_s = decode(n_gen, true);
  decode(n_gen, false);  // warm-up (captures the chain graphs)
  const double decode_s = decode(n_gen, false);
  const std::string decode_path = backend->decode_path(greedy);

  // The ceilings are measured after the runs, so their buffers stay out of the peak-memory figure.
  const uint64_t peak_bytes = peak_memory_bytes(device);
  progress(true, "measuring memory bandwidth and GEMM rate");
  const BackendOptions bo = backend_options(a.device);
  const DeviceCeilings ceil = measure_ceilings(device, bo);

  const double weight_bytes = double(backend->weight_bytes());
  const double decode_bound = ceil.read_bandwidth_gbs * 1e9 / weight_bytes;
  const double matmul_params = double(c.n_params() - c.vocab_size * c.d_model * (c.tie_embeddings ? 1 : 2));  // layer weights
  const double prefill_flops = 2.0 * matmul_params * double(T) + 2.0 * double(c.vocab_size * c.d_model);
  const double prefill_bound = ceil.matmul_gflops * 1e9 / (prefill_flops / double(T));
  nlohmann::json out = {
      {"model", model_name},
      {"config", {{"layers", c.n_layer}, {"d_model", c.d_model}, {"d_state", c.d_state}, {"heads", c.n_heads}, {"params", c.n_params()}}},
      {"backend", backend->name()},
      {"device", ceil.device_name},
      {"dtype", bo.dtype},
      {"decode_path", decode_path + " (greedy)"},
#ifdef MAMBA_NATIVE_BUILD
      {"build", "native (-march=native)"},
#else
      {"build", "portable"},
#endif
      {"prompt_len", T},
      {"gen", n_gen},
      {"prefill_tok_s", double(T) / prefill_s},
      {"prefill_seconds", prefill_s},
      {"decode_tok_s", 1.0 / decode_s},
      {"decode_ms_per_token", decode_s * 1e3},
      {"decode_single_step_tok_s", 1.0 / single_s},
      {"peak_memory_bytes", peak_bytes},
      {"weight_bytes_per_token", weight_bytes},
      {"memory_bandwidth_gbs", ceil.read_bandwidth_gbs},
      {"decode_bound_tok_s", decode_bound},
      {"decode_fraction_of_bound", (1.0 / decode_s) / decode_bound},
      {"matmul_gflops", ceil.matmul_gflops},
      {"matmul", ceil.matmul_what},
      {"prefill_flops_per_token", prefill_flops / double(T)},
      {"prefill_bound_tok_s", prefill_bound},
      {"prefill_fraction_of_bound", (double(T) / prefill_s) / prefill_bound},
  };
  if (!json_only)
    std::fprintf(stderr, "prefill %.1f tok/s (bound %.1f), decode %.2f tok/s (bound %.2f)\n", double(T) / prefill_s, prefill_bound,
                 1.0 / decode_s, decode_bound);
  write_stdout(out.dump(2) + "\n");
  return 0;
}

}  // namespace

void add_bench(Commands& commands) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* sub = commands.add("bench", "prefill and decode speed next to the machine's bandwidth and GEMM rate", [a] { return run(*a); });
  add_model_option(sub, a->model);
  sub->add_option("--config", a->config, "a random-weight model of this size instead of -m: 130m, 370m, 780m, 1.3b or 2.7b")
      ->type_name("NAME")
      ->check(CLI::IsMember({"130m", "370m", "780m", "1.3b", "2.7b"}));
  sub->add_option("--prompt-len", a->prompt_len, "prompt tokens")->type_name("T")->capture_default_str();
  sub->add_option("--gen", a->gen, "decoded tokens")->type_name("N")->capture_default_str();
  sub->add_option("--reps", a->reps, "timed prefill runs (the median counts)")->type_name("R")->capture_default_str();
  sub->add_option("--seed", a->seed, "seed of the random weights (--config)")->type_name("S")->capture_default_str()->check(NonNegative);
  sub->add_option("--matrix", a->matrix, "time the SSD matrix view's work for T tokens instead (capture, M of one head, duality, ranks)")
      ->type_name("T")
      ->check(CLI::Range(int64_t(1), int64_t(8192)));
  sub->add_flag("--json", a->json_only, "only the JSON on standard output, no summary line on standard error");
  add_device_options(sub, a->device, false);
}

}  // namespace mamba::cli
