#pragma once
// Model hyper-parameters as read from config.json (HF Mamba2Config / MambaConfig, or mamba_ssm's
// MambaConfig), GGUF metadata or a mamba.c header, with every derived size computed and checked once, here.
//
// Two architectures share these fields. Mamba-2 (SSD): H heads of P channels, a scalar A per head, B and C
// in G groups. Mamba-1 (selective scan): every one of the E = d_inner channels is its own "head" of one
// channel (H = E, P = 1, G = 1) with a diagonal A of N entries, B and C shared by all channels, and dt
// from a rank-R projection; with those values the state shapes below hold for both.
#include <cstdint>
#include <string>

namespace mamba {

enum class Arch { Mamba2, Mamba1 };
const char* arch_name(Arch a);  // "Mamba-2" | "Mamba-1"

struct Config {
  Arch arch = Arch::Mamba2;
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
  int64_t vocab_valid = 0;   // ids >= vocab_valid are padding and never sampled (0: finalize sets V)
  int64_t dt_rank = 0;       // Mamba-1: R, the rank of the dt projection (x_proj -> dt_proj)
  bool conv_bias = true;     // use_conv_bias
  bool use_bias = false;     // in_proj / out_proj bias
  bool residual_in_fp32 = true;
  bool tie_embeddings = false;
  double norm_eps = 1e-5;                                           // layer_norm_epsilon
  double dt_min = 0.0;                                              // time_step_limit[0]
  double dt_max = 0.0;                                              // time_step_limit[1] (may be +inf)
  int64_t bos_token_id = -1, eos_token_id = -1, pad_token_id = -1;  // -1: none

  // derived (filled by finalize()); Mamba-1 sets d_inner itself (E, which may differ from expand * D)
  int64_t d_inner = 0;    // E = H * P = expand * D
  int64_t conv_dim = 0;   // Mamba-2: E + 2 G N; Mamba-1: E
  int64_t d_in_proj = 0;  // Mamba-2: 2E + 2GN + H (z | xBC | dt); Mamba-1: 2E (x | z)
  int64_t d_x_proj = 0;   // Mamba-1: R + 2N (dt | B | C); 0 for Mamba-2
  int64_t heads_per_group = 0;

  // Computes derived sizes and validates; throws mamba::Error naming `origin` and the field.
  void finalize(const std::string& origin);

  bool mamba1() const { return arch == Arch::Mamba1; }
  int64_t n_params() const;  // total parameter count (embedding counted once when tied)
  int64_t state_floats_per_layer() const { return conv_dim * (d_conv - 1) + n_heads * head_dim * d_state; }
  std::string summary() const;  // one line, for logs and the GUI

  static Config from_json_text(const std::string& text, const std::string& origin);
  static Config from_file(const std::string& path);  // config.json, or a folder containing one
  // The real shapes of state-spaces/mamba2-{130m,370m,780m,1.3b,2.7b} ("130m", ...) and
  // state-spaces/mamba-{130m,370m,790m,1.4b,2.8b} ("mamba1-130m", ...); throws on an unknown name.
  static Config preset(const std::string& name);
  // A Mamba-1 config from its stored sizes (mamba.c headers, GGUF metadata); finalize() not yet called.
  static Config mamba1(int64_t d_model, int64_t n_layer, int64_t vocab_size, int64_t d_inner, int64_t d_state, int64_t d_conv,
                       int64_t dt_rank);
};

}  // namespace mamba
