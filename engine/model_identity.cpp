// Model::identity(): the hash a snapshot records to know which model it belongs to.
#include <cstdio>
#include <vector>

#include "engine/digest.h"
#include "engine/model.h"

namespace mamba {

namespace {

// The fields that decide what the model computes (not chunk_size: it only moves rounding; not the token
// ids of bos/eos/pad: they do not touch the state).
std::string canonical_config(const Config& c) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "mamba2-identity-v1 D=%lld L=%lld N=%lld H=%lld P=%lld G=%lld K=%lld V=%lld conv_bias=%d use_bias=%d tied=%d "
                "eps=%.17g dt_min=%.17g dt_max=%.17g",
                (long long)c.d_model, (long long)c.n_layer, (long long)c.d_state, (long long)c.n_heads, (long long)c.head_dim,
                (long long)c.n_groups, (long long)c.d_conv, (long long)c.vocab_size, int(c.conv_bias), int(c.use_bias),
                int(c.tie_embeddings), c.norm_eps, c.dt_min, c.dt_max);
  return buf;
}

struct Block {
  const float* data;
  size_t floats;
};

}  // namespace

std::string Model::identity() const {
  std::lock_guard lock(m_identity.mutex);
  if (!m_identity.value.empty()) return m_identity.value;

  // Every tensor in a fixed order, cut into blocks hashed in parallel; the block digests (with each
  // tensor's length, so a value cannot move across a tensor boundary unseen) are hashed in order.
  std::vector<const Tensor*> tensors = {&weights.embedding};
  for (const LayerWeights& l : weights.layers)
    for (const Tensor* t :
         {&l.norm, &l.in_proj, &l.in_proj_bias, &l.conv_w, &l.conv_b, &l.dt_bias, &l.A, &l.D, &l.gnorm, &l.out_proj, &l.out_proj_bias})
      tensors.push_back(t);
  tensors.push_back(&weights.norm_f);
  tensors.push_back(&weights.lm_head);

  constexpr size_t kBlockFloats = size_t(16) << 20;  // 64 MiB
  std::vector<Block> blocks;
  std::vector<uint64_t> lengths;
  for (const Tensor* t : tensors) {
    lengths.push_back(t->size());
    for (size_t off = 0; off < t->size(); off += kBlockFloats) blocks.push_back({t->data() + off, std::min(kBlockFloats, t->size() - off)});
  }
  std::vector<Digest128> digests(blocks.size());
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t i = 0; i < static_cast<int64_t>(blocks.size()); ++i)
    digests[size_t(i)] = xxh3_128(blocks[size_t(i)].data, blocks[size_t(i)].floats * sizeof(float));

  Hasher128 h;
  const std::string cfg = canonical_config(config);
  h.update(cfg.data(), cfg.size());
  h.update(lengths.data(), lengths.size() * sizeof(uint64_t));
  h.update(digests.data(), digests.size() * sizeof(Digest128));
  m_identity.value = h.digest().hex();
  return m_identity.value;
}

}  // namespace mamba
