#pragma once
// A loaded model: config + float32 weights, immutable after load (shared by backends and sessions).
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/config.h"

namespace mamba {

using Tensor = std::vector<float>;  // row-major, shape in the comment beside each field

struct LayerWeights {
  Tensor norm;           // (D)            pre-mixer RMSNorm
  Tensor in_proj;        // (d_in_proj, D) rows: z (E) | xBC (conv_dim) | dt (H)
  Tensor in_proj_bias;   // (d_in_proj) or empty
  Tensor conv_w;         // (conv_dim, K)  depthwise
  Tensor conv_b;         // (conv_dim) or empty
  Tensor dt_bias;        // (H)
  Tensor A_log;          // (H)            as stored (the float64 reference takes its exp in double)
  Tensor A;              // (H)            A = -exp(A_log), precomputed at load
  Tensor D;              // (H)            skip connection
  Tensor gnorm;          // (E)            grouped gated RMSNorm weight
  Tensor out_proj;       // (D, E)
  Tensor out_proj_bias;  // (D) or empty
};

struct Weights {
  Tensor embedding;                  // (V, D)
  std::vector<LayerWeights> layers;  // (L)
  Tensor norm_f;                     // (D)
  Tensor lm_head;                    // (V, D), empty when tied (use embedding)
  const Tensor& lm_head_or_embedding() const { return lm_head.empty() ? embedding : lm_head; }
};

// progress(done_bytes, total_bytes); cancel is polled between tensors.
struct LoadOptions {
  std::function<void(uint64_t, uint64_t)> progress;
  const std::atomic<bool>* cancel = nullptr;
};

struct Model {
  Config config;
  Weights weights;
  std::string source;        // folder it was loaded from, or "random:<preset>"
  std::string source_dtype;  // dtype found in the file(s): F32, BF16, F16 or mixed
  uint64_t file_bytes = 0;

  // Loads config.json and safetensors weights from `dir`, checking every tensor's presence and shape.
  static std::shared_ptr<const Model> load(const std::string& dir, const LoadOptions& opt = {});
  // Random weights with realistic scales (benchmarks, tests); deterministic in `seed`.
  static std::shared_ptr<const Model> random(const Config& config, uint64_t seed);

  // Who this model is, for snapshots: XXH3-128 over the config fields that define the math and every
  // weight as loaded (f32), as 32 hex digits. Equal for the same numbers whatever file or dtype they came
  // from. Computed on first use (in parallel; about a second per 10 GB of weights), then cached; a copy
  // of the Model computes its own.
  std::string identity() const;

 private:
  struct IdentityCache {
    std::mutex mutex;
    std::string value;
    IdentityCache() = default;
    IdentityCache(const IdentityCache&) {}
    IdentityCache& operator=(const IdentityCache&) {
      std::lock_guard lock(mutex);
      value.clear();
      return *this;
    }
  };
  mutable IdentityCache m_identity;
};

// Where the embedded default model lives (env MAMBA_DEFAULT_MODEL, next to the binary, or the source tree).
std::string default_model_dir();

}  // namespace mamba
