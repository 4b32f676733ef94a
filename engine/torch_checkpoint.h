#pragma once
// PyTorch's torch.save zip format (pytorch_model.bin of the state-spaces checkpoints), read with libzip
// and the restricted unpickler (engine/pickle.h): the archive's <name>/data.pkl must be a state dict of
// F32/F16/BF16 tensors whose storages are the entries <name>/data/<key>. The legacy (pre-1.6, non-zip)
// format is refused with a message saying so. Tensor names are kept; mamba_ssm's "backbone.embedding"
// is an alias the model loader knows.
#include <memory>
#include <string>

#include "engine/tensor_source.h"

namespace mamba {

struct TorchZipLimits {
  uint64_t max_pickle_bytes = 64ull << 20;  // data.pkl of a state dict is a few hundred KB
  uint64_t max_entries = 1u << 20;
};

std::unique_ptr<TensorSource> open_torch_checkpoint(const std::string& path, const TorchZipLimits& limits = {});

}  // namespace mamba
