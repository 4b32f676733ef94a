#pragma once
// The seam between the model math and the hardware. CPU and CUDA implement all of it.
// A backend owns the live State of one sequence; get_state/set_state move it to and from the host.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/model.h"
#include "engine/sampler.h"
#include "engine/state.h"

namespace mamba {

enum class ScanMode { Chunked, Recurrent };
const char* scan_name(ScanMode m);
ScanMode parse_scan(const std::string& s);  // "chunked" | "recurrent"; throws otherwise

struct ProbeSink;  // observer of per-layer internals (dt, decay, state norms); null = off, at no cost

struct ForwardOptions {
  ScanMode scan = ScanMode::Chunked;
  int64_t chunk_size = 0;   // 0: the model's chunk_size
  bool all_logits = false;  // logits for every position (T, V), else only the last (1, V)
  ProbeSink* probes = nullptr;
};

struct BackendOptions {
  int threads = 0;            // CPU threads; 0 = all cores
  std::string dtype = "f32";  // weight dtype on the device: f32 | bf16 | f16 (CPU computes in f32)
  int device_index = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;  // e.g. "cpu (2 threads)", "cuda:0 NVIDIA H100 (bf16)"
  virtual const Model& model() const = 0;

  virtual void reset_state() = 0;              // zero state, no tokens
  virtual void set_state(const State& s) = 0;  // throws if the shapes do not match the model
  virtual State get_state() const = 0;
  virtual int64_t n_tokens() const = 0;

  // Consumes `tokens` from the current state (prefill); writes (T or 1, V) logits to host memory.
  virtual void forward(std::span<const int32_t> tokens, const ForwardOptions& opt, float* logits) = 0;
  // One token through the recurrence (decode); writes (V) logits. A backend that samples on its device
  // accepts logits == nullptr (nothing crosses the bus).
  virtual void step(int32_t token, float* logits, ProbeSink* probes = nullptr) = 0;

  // Sampling on the device, so only the chosen id crosses the bus. step_sample feeds `token` and samples
  // the next id; sample_last samples from the logits of the last forward/step. `uniform` is the caller's
  // draw in [0, 1). nullopt: not available for these parameters (the caller samples step()'s logits).
  virtual bool samples_on_device() const { return false; }
  virtual std::optional<int32_t> step_sample(int32_t, const SamplerParams&, double) { return std::nullopt; }
  virtual std::optional<int32_t> sample_last(const SamplerParams&, double) { return std::nullopt; }
  // Several decode steps per call without the host in between: the same as step_sample(token, sp,
  // uniforms[0]), then step_sample(that id, sp, uniforms[1]), ..., ending early after a sampled id that is
  // in `stop` (returned, not fed). Returns the sampled ids; the last one is not fed. decode_chain(): the
  // most steps one call takes (0: not available; callers then use step_sample).
  virtual int decode_chain() const { return 0; }
  virtual std::vector<int32_t> step_sample_chain(int32_t, const SamplerParams&, std::span<const double>, std::span<const int32_t>) {
    return {};
  }
  // Bytes of weights the backend reads per decoded token (for the bandwidth bound).
  virtual uint64_t weight_bytes() const = 0;
};

std::unique_ptr<Backend> make_cpu_backend(std::shared_ptr<const Model> model, const BackendOptions& opt = {});

}  // namespace mamba
