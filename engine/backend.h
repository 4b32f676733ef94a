#pragma once
// The seam between the model math and the hardware. CPU and CUDA implement all of it.
// A backend owns the live State of one sequence; get_state/set_state move it to and from the host.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/dt_edit.h"
#include "engine/model.h"
#include "engine/probes.h"
#include "engine/sampler.h"
#include "engine/state.h"

namespace mamba {

struct LayerCapture;

enum class ScanMode { Chunked, Recurrent };
const char* scan_name(ScanMode m);
ScanMode parse_scan(const std::string& s);  // "chunked" | "recurrent"; throws otherwise

struct ForwardOptions {
  ScanMode scan = ScanMode::Chunked;
  int64_t chunk_size = 0;             // 0: the backend's choice; else 1..kMaxChunk (a chunk longer than the
                                      // tokens covers them all)
  bool all_logits = false;            // logits for every position (T, V), else only the last (1, V)
  ProbeSink* probes = nullptr;        // per-layer values of every position (engine/probes.h); null: none, at no cost
  ResidualSink* residuals = nullptr;  // the residual stream after every layer (engine/probes.h); null: none
  // Long prompts. When *cancel becomes true, forward stops at the next layer or segment boundary and
  // throws mamba::Cancelled, leaving the state (and last logits) as they were before the call. Not owned.
  const std::atomic<bool>* cancel = nullptr;
  // progress(done, total) in tokens, after every layer of every segment (done interpolated across layers).
  std::function<void(int64_t, int64_t)> progress;
  // One layer's scan inputs and output copied out (engine/ssd_matrix.h; CPU backend). Not owned.
  LayerCapture* capture = nullptr;
  static constexpr int64_t kMaxChunk = 4096;
};

// Decode: sample up to `steps` ids, feeding each but the last through the model.
struct DecodeRequest {
  int32_t token = -1;             // fed first (the last sampled id); -1: the first id is sampled from the
                                  // logits of the last forward/step, nothing fed before it
  int64_t steps = 1;              // ids to sample
  std::span<const int32_t> stop;  // an id in here ends the run once sampled (it is reported, not fed)
  bool prob = false;              // report each id's model probability
  int top_n = 0;                  // and its top_n alternatives with theirs (0..kMaxTopN), best first
  ProbeSink* probes = nullptr;    // per-layer values of every fed token
  static constexpr int kMaxTopN = 16;
};

struct DecodedToken {
  int32_t id = 0;
  SampleInfo info;  // prob / top as the request asked; empty otherwise
};

// Called for each sampled id, in order. Ids come in bursts (a backend may run several steps per call);
// returning false ends the run after the current burst. Every id reported belongs to the sequence.
using DecodeCallback = std::function<bool(const DecodedToken&)>;

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

  // Consumes `tokens` from the current state (prefill); writes (T or 1, V) logits to host memory, or
  // none when `logits` is null (the backend keeps the last row for decode()).
  virtual void forward(std::span<const int32_t> tokens, const ForwardOptions& opt, float* logits) = 0;
  // One token through the recurrence; writes (V) logits when `logits` is not null.
  virtual void step(int32_t token, float* logits, ProbeSink* probes = nullptr) = 0;
  // The logits after the last forward/step/decode (V floats); throws when there are none yet.
  virtual void last_logits(std::span<float> out) const = 0;

  // Samples with `sampler` (its parameters; one draw of its generator per id when temperature > 0, none
  // when greedy, as Sampler::sample) and `history` (the tokens before this run, for the repetition
  // penalty). Returns the number of ids reported. The default runs step() and samples on the host; a GPU
  // backend samples on its device, so that only ids (and what the request asks to report) cross the bus.
  virtual int64_t decode(const DecodeRequest& req, Sampler& sampler, std::span<const int32_t> history, const DecodeCallback& on_token);
  // How decode() runs for these sampler settings, in words (benchmarks, the status bar).
  virtual std::string decode_path(const SamplerParams&) const { return "host sampling"; }

  // Bytes of weights the backend reads per decoded token (for the bandwidth bound).
  virtual uint64_t weight_bytes() const = 0;
  // The weights' dtype on the device: f32 | bf16 | f16 (snapshots record it).
  virtual std::string weights_dtype() const { return "f32"; }

  // Interventions on dt (engine/dt_edit.h) for every token run from now on, until replaced; they are
  // not part of State. A backend that cannot apply them throws and keeps its edits; an empty list is
  // always accepted. The default applies none.
  virtual void set_dt_edits(std::vector<DtEdit> edits);
  virtual std::vector<DtEdit> dt_edits() const { return {}; }
};

// Throws on a request no backend can run (negative steps, too many alternatives).
void check_decode_request(const DecodeRequest& r);
// Throws unless chunk_size is 0 or in 1..ForwardOptions::kMaxChunk.
void check_forward_options(const ForwardOptions& o);

std::unique_ptr<Backend> make_cpu_backend(std::shared_ptr<const Model> model, const BackendOptions& opt = {});

}  // namespace mamba
