#pragma once
// How far the float32 scans, the bf16/f16 weights and the GPU are from the truth: one text through the
// float64 reference (engine/reference.h) and through each run (a backend, a scan, a chunk size), compared
// per layer and position (the residual stream after the layer), on the final states and on the logits;
// each run timed as a prefill, with its FLOPs (engine/flops.h); and a sweep of the chunked scan's chunk
// size Q. docs/COMPARE.md describes the passes, the measures and the formulas.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/flops.h"

namespace mamba {

// One way of computing the model: a backend on a device with a weight dtype, a scan, a chunk size.
struct CompareRun {
  std::string name;  // names it in the JSON and the view: "chunked", "recurrent", "cuda_bf16", ...
  std::string device = "cpu";
  std::string dtype = "f32";
  ScanMode scan = ScanMode::Chunked;
};

// Makes the backend of a run; the engine only knows the CPU, the app passes backends/make_backend.
using BackendMaker =
    std::function<std::unique_ptr<Backend>(const std::string& device, std::shared_ptr<const Model>, const BackendOptions&)>;

struct CompareOptions {
  int64_t chunk_size = 0;        // Q of the chunked runs; 0: the model's
  std::vector<CompareRun> runs;  // empty: default_compare_runs("cpu", {})
  std::vector<int64_t> sweep;    // chunk sizes of the sweep (empty: none); each is clamped to T and kMaxChunk
  std::string sweep_device = "cpu", sweep_dtype = "f32";
  int threads = 0;            // CPU threads (0: all cores)
  BackendMaker make_backend;  // null: CPU only
  uint64_t memory_limit = 0;  // bytes the reference's stored layer outputs may take; 0: a quarter of RAM
  int max_repeats = 3;        // a timed prefill shorter than 0.2 s is repeated up to this many times (best kept)
  std::function<void(double fraction, const std::string& what)> progress;  // from the calling thread
  const std::atomic<bool>* cancel = nullptr;                               // polled between pieces of work and layers
};

// The runs a device offers: CPU chunked and recurrent, then on CUDA the chunked scan per weight dtype
// (`dtypes` empty: f32, bf16, f16).
std::vector<CompareRun> default_compare_runs(const std::string& device, const std::vector<std::string>& dtypes);

// Positions are the text's tokens; per (layer, position), layers fastest-varying last: index l * T + t.
struct LayerDiff {
  std::vector<float> err;                 // (L, T)  ||a - b|| / ||b||  over the D channels of the residual after layer l
  std::vector<int32_t> at;                // (L, T)  the channel with the largest |a - b|
  std::vector<double> a, b;               // (L, T)  the two values in that channel
  std::vector<double> ssm_err, conv_err;  // (L)  final SSM and conv states, ||a - b|| / ||b||
  double max_err(int64_t layer, int64_t T) const;
  double mean_err(int64_t layer, int64_t T) const;
  double max_state_err() const;  // over layers, SSM and conv
};

struct RunReport {
  CompareRun spec;
  std::string backend;  // the backend's own name
  int64_t chunk_size = 0;
  LayerDiff vs_ref;                   // a = this run, b = float64
  std::vector<float> norm;            // (L, T)  ||r|| of this run's residual
  std::vector<double> logit_err, kl;  // (T)  ||l - l64|| / ||l64||;  KL(p64 || p), nats
  std::vector<uint8_t> top1;          // (T)  1 where the arg max equals the float64 one
  double seconds = 0;                 // whole-text prefill (last logits only), best of the repeats
  std::vector<double> layer_seconds;  // (L + 1) per layer, then the final norm + LM head; empty off the CPU
  FlopCount flops;
  double max_logit_err() const;
  double kl_mean() const;
  double top1_agree() const;
};

struct PairReport {
  int a = 0, b = 0;  // indices into runs
  LayerDiff diff;    // a = runs[a], b = runs[b]
};

struct SweepPoint {
  int64_t chunk_size = 0;  // 0: the recurrent scan
  double seconds = 0;
  FlopCount flops;
  double max_rel_err = 0;    // max over layers and positions of the layer output's error against float64
  double state_rel_err = 0;  // max over layers of the final SSM state's
};

struct CompareResult {
  std::vector<int32_t> ids;
  int64_t L = 0, T = 0, D = 0;
  int64_t chunk_size = 0, model_chunk_size = 0;
  double ref_seconds = 0;  // the float64 reference's pass (recurrent, stores every layer's output)
  FlopCount ref_flops;
  std::vector<float> ref_norm;  // (L, T)  ||r64||
  std::vector<RunReport> runs;
  std::vector<PairReport> pairs;  // every two runs, in run order
  std::string sweep_backend;
  std::vector<SweepPoint> sweep;  // chunked, in the order asked
  SweepPoint sweep_recurrent;     // the recurrent scan on the sweep's backend (when there is a sweep)
  const PairReport* pair(int a, int b) const;
  int run_index(const std::string& name) const;  // -1 when absent
};

// Runs the comparison; throws mamba::Cancelled when cancelled, mamba::Error on bad input or when the
// reference's layer outputs (8 L T D bytes) would not fit the memory limit.
CompareResult compare(std::shared_ptr<const Model> model, std::span<const int32_t> ids, const CompareOptions& opt);

// The JSON mamba-cli compare prints (docs/COMPARE.md).
nlohmann::json compare_json(const CompareResult& r);

// Chunk sizes 1, 2, 4, ... up to T, with T itself last.
std::vector<int64_t> power_of_two_sweep(int64_t T);

}  // namespace mamba
