#pragma once
// Models the CUDA tests share: shapes closer to the released checkpoints than the engine's tiny fixtures.
#include <cmath>
#include <memory>

#include "engine/backend.h"
#include "engine/model.h"
#include "kernels/cuda_backend.h"

namespace mamba::test {

inline std::unique_ptr<Backend> gpu(std::shared_ptr<const Model> m, const char* dtype) {
  BackendOptions o;
  o.dtype = dtype;
  return make_cuda_backend(std::move(m), o);
}

// Closer to the released shapes: d_state 128, head_dim 64, chunk 64, several chunks.
inline std::shared_ptr<const Model> medium(int64_t groups) {
  Config c;
  c.d_model = 256;
  c.n_layer = 3;
  c.d_state = 128;
  c.head_dim = 64;
  c.expand = 2;
  c.n_heads = 8;
  c.n_groups = groups;
  c.chunk_size = 64;
  c.d_conv = 4;
  c.vocab_size = 515;
  c.tie_embeddings = groups == 1;
  c.dt_min = 0;
  c.dt_max = INFINITY;
  c.eos_token_id = 0;
  c.finalize("medium");
  return Model::random(c, 9);
}

// The layer shape of mamba2-130m (d_model 768, 24 heads of 64, d_state 128: six clusters of 16 in the
// one-kernel decode) with few layers and a small vocabulary.
inline std::shared_ptr<const Model> wide(int64_t groups) {
  Config c;
  c.d_model = 768;
  c.n_layer = 2;
  c.d_state = 128;
  c.head_dim = 64;
  c.expand = 2;
  c.n_heads = 24;
  c.n_groups = groups;
  c.chunk_size = 64;
  c.d_conv = 4;
  c.vocab_size = 515;
  c.tie_embeddings = true;
  c.dt_min = 0;
  c.dt_max = INFINITY;
  c.eos_token_id = 0;
  c.finalize("wide");
  return Model::random(c, 21);
}

}  // namespace mamba::test
