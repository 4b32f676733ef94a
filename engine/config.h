#pragma once
// Model hyper-parameters as read from config.json (HF Mamba2Config form, or mamba_ssm's form),
// with every derived size computed and checked once, here.
#include <cstdint>
#include <string>

namespace mamba {

struct Config {
  // as stored
  int64_t d_model = 0;    // hidden_size (D)
  int64_t n_layer = 0;    // num_hidden_layers (L)
  int64_t d_state = 128;  // state_size (N)
  int64_t n_heads = 0;    // num_heads (H)
  int64_t head_dim = 64;  // head_dim (P)
  int64_t expand = 2;
  int64_t n_groups = 1;      // G
  int64_t chunk_size = 256;  // Q
  int64_t d_conv = 4;        // conv_kernel (K)
  int64_t vocab_size = 0;    // V: embedding rows (may be padded past the tokenizer)
  bool conv_bias = true;     // use_conv_bias
  bool use_bias = false;     // in_proj / out_proj bias
  bool residual_in_fp32 = true;
  bool tie_embeddings = false;
  double norm_eps = 1e-5;                                           // layer_norm_epsilon
  double dt_min = 0.0;                                              // time_step_limit[0]
  double dt_max = 0.0;                                              // time_step_limit[1] (may be +inf)
  int64_t bos_token_id = -1, eos_token_id = -1, pad_token_id = -1;  // -1: none

  // derived (filled by finalize())
  int64_t d_inner = 0;    // E = H * P = expand * D
  int64_t conv_dim = 0;   // E + 2 G N
  int64_t d_in_proj = 0;  // 2E + 2GN + H  (z | xBC | dt)
  int64_t heads_per_group = 0;

  // Computes derived sizes and validates; throws mamba::Error naming `origin` and the field.
  void finalize(const std::string& origin);

  int64_t n_params() const;  // total parameter count (embedding counted once when tied)
  int64_t state_floats_per_layer() const { return conv_dim * (d_conv - 1) + n_heads * head_dim * d_state; }
  std::string summary() const;  // one line, for logs and the GUI

  static Config from_json_text(const std::string& text, const std::string& origin);
  static Config from_file(const std::string& path);  // config.json, or a folder containing one
  // The real shapes of state-spaces/mamba2-{130m,370m,780m,1.3b,2.7b}; throws on an unknown name.
  static Config preset(const std::string& name);
};

}  // namespace mamba
