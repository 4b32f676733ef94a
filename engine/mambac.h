#pragma once
// mamba.c's model.bin (the layout its export.py writes): a 256-byte header (u32 magic "Mamb" =
// 0x4d616d62, i32 version 1, i32 n_layers, vocab_size, d_model, d_inner, dt_rank, d_state, d_conv,
// shared_classifier, zero padding), then f32 weights grouped by kind across layers: embedding
// (V', D) with V' = vocab_size rounded up to a multiple of 8, in_proj, conv1d weight, conv1d bias,
// x_proj, dt_proj weight, dt_proj bias, A (= -exp(A_log)), D, out_proj, norm (each (L, ...)), norm_f,
// and lm_head (V', D) unless shared. The file size must match the header exactly.
// Its tokenizer.bin (u32 magic "MbTk" = 0x4d62546b, u32 version 1, u32 count, u32 max length, then
// count x (u32 length, bytes)) holds each id's decoded text; it has no merges, so it serves to check that
// the model's vocabulary is GPT-NeoX-20B's (engine/checkpoint.h).
#include <memory>
#include <string>
#include <vector>

#include "engine/config.h"
#include "engine/tensor_source.h"

namespace mamba {

bool is_mambac_file(const std::string& path);  // starts with the magic
// The config and the tensors (Hugging Face names and shapes) of a mamba.c model.bin.
Config mambac_config(const std::string& path);
std::unique_ptr<TensorSource> open_mambac(const std::string& path, const Config& c);

// The decoded text of every id in a tokenizer.bin.
std::vector<std::string> read_mambac_tokenizer(const std::string& path);

}  // namespace mamba
