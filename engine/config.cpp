#include "engine/config.h"

#include <cmath>
#include <filesystem>
#include <sstream>

#include "engine/error.h"
#include "engine/json_lenient.h"

namespace mamba {

namespace {

using nlohmann::json;

// Upper bounds far above any real checkpoint (Mamba-2 2.7b: 64 layers, d_model 2560, vocab 50288) that
// keep every derived size well inside int64 and refuse absurd values before anything is computed or
// allocated from them.
constexpr int64_t kMaxDim = int64_t{1} << 20;  // d_model, heads, head_dim, d_state, groups, chunk
constexpr int64_t kMaxLayers = int64_t{1} << 14;
constexpr int64_t kMaxVocab = int64_t{1} << 24;
constexpr int64_t kMaxSmall = 1024;                    // expand, conv_kernel
constexpr int64_t kMaxParams = int64_t{1} << 40;       // ~1.1e12 parameters
constexpr int64_t kMaxStateFloats = int64_t{1} << 32;  // 16 GiB per sequence (2.7b: 43M floats)

int64_t max_of(const std::string& name) {
  if (name == "num_hidden_layers" || name == "n_layer") return kMaxLayers;
  if (name == "vocab_size") return kMaxVocab;
  if (name == "expand" || name == "conv_kernel" || name == "d_conv") return kMaxSmall;
  if (name == "chunk_size") return 4096;  // ForwardOptions::kMaxChunk
  return kMaxDim;
}

void check_range(int64_t v, const std::string& name, const std::string& origin) {
  if (v <= 0) throw Error(origin + ": field '" + name + "' must be positive, got " + std::to_string(v));
  if (v > max_of(name))
    throw Error(origin + ": field '" + name + "' is implausibly large: " + std::to_string(v) + " (at most " + std::to_string(max_of(name)) +
                ")");
}

// a * b + c for sizes, refusing int64 overflow.
int64_t mul_add(int64_t a, int64_t b, int64_t c, const std::string& origin) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r) || __builtin_add_overflow(r, c, &r)) throw Error(origin + ": the model's sizes overflow");
  return r;
}

int64_t get_int(const json& j, const char* key, const std::string& origin, int64_t fallback, bool required) {
  if (!j.contains(key) || j[key].is_null()) {
    if (required) throw Error(origin + ": missing required field '" + key + "'");
    return fallback;
  }
  const json& v = j[key];
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::floor(d) == d && std::abs(d) < 9e15) return static_cast<int64_t>(d);
  }
  throw Error(origin + ": field '" + key + "' must be an integer, got " + json_excerpt(v));
}

bool get_bool(const json& j, const char* key, const std::string& origin, bool fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_boolean()) throw Error(origin + ": field '" + key + "' must be true or false, got " + json_excerpt(j[key]));
  return j[key].get<bool>();
}

double get_double(const json& j, const char* key, const std::string& origin, double fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  return json_to_double(j[key], origin, key);
}

void read_time_step_limit(const json& j, const char* key, const std::string& origin, Config& c) {
  c.dt_min = 0.0;
  c.dt_max = INFINITY;
  if (!j.contains(key) || j[key].is_null()) return;
  const json& v = j[key];
  if (!v.is_array() || v.size() != 2) throw Error(origin + ": field '" + key + "' must be a pair [min, max], got " + json_excerpt(v));
  c.dt_min = json_to_double(v[0], origin, std::string(key) + "[0]");
  c.dt_max = json_to_double(v[1], origin, std::string(key) + "[1]");
}

// mamba_ssm's dt_rank: an integer, or "auto" = ceil(d_model / 16).
int64_t read_dt_rank(const json& j, const char* key, const std::string& origin, int64_t d_model) {
  if (j.contains(key) && j[key].is_string()) {
    if (j[key] != "auto") throw Error(origin + ": field '" + key + "' must be an integer or \"auto\", got " + json_excerpt(j[key]));
    return (d_model + 15) / 16;
  }
  return get_int(j, key, origin, (d_model + 15) / 16, false);
}

// mamba_ssm's own config.json: {"d_model", "n_layer", "ssm_cfg": {...}, "pad_vocab_size_multiple", ...}.
// ssm_cfg.layer is "Mamba1" (mamba_ssm's default when absent) or "Mamba2".
Config from_mamba_ssm_json(const json& j, const std::string& origin) {
  Config c;
  c.d_model = get_int(j, "d_model", origin, 0, true);
  c.n_layer = get_int(j, "n_layer", origin, 0, true);
  const int64_t vocab = get_int(j, "vocab_size", origin, 0, true);
  const int64_t pad_mult = get_int(j, "pad_vocab_size_multiple", origin, 8, false);  // mamba_ssm's default
  check_range(vocab, "vocab_size", origin);
  if (pad_mult < 1 || pad_mult > kMaxVocab)
    throw Error(origin + ": field 'pad_vocab_size_multiple' must be in 1.." + std::to_string(kMaxVocab) + ", got " +
                std::to_string(pad_mult));
  c.vocab_size = (vocab + pad_mult - 1) / pad_mult * pad_mult;  // both bounded above: no overflow
  c.vocab_valid = vocab;                                        // the padded ids are never sampled
  if (get_int(j, "d_intermediate", origin, 0, false) != 0)
    throw Error(origin + ": field 'd_intermediate' is non-zero (MLP blocks are not supported)");
  if (j.contains("attn_layer_idx") && j["attn_layer_idx"].is_array() && !j["attn_layer_idx"].empty())
    throw Error(origin + ": hybrid attention layers ('attn_layer_idx') are not supported yet");
  if (!get_bool(j, "rms_norm", origin, true)) throw Error(origin + ": field 'rms_norm' is false (LayerNorm models are not supported)");
  c.residual_in_fp32 = get_bool(j, "residual_in_fp32", origin, true);
  c.tie_embeddings = get_bool(j, "tie_embeddings", origin, true);
  json ssm = j.contains("ssm_cfg") && j["ssm_cfg"].is_object() ? j["ssm_cfg"] : json::object();
  const std::string sorigin = origin + " (ssm_cfg)";
  const json layer = ssm.contains("layer") ? ssm["layer"] : json("Mamba1");
  c.norm_eps = 1e-5;
  c.conv_bias = get_bool(ssm, "conv_bias", sorigin, true);
  c.use_bias = get_bool(ssm, "bias", sorigin, false);
  c.d_conv = get_int(ssm, "d_conv", sorigin, 4, false);
  c.expand = get_int(ssm, "expand", sorigin, 2, false);
  check_range(c.d_model, "d_model", origin);
  check_range(c.expand, "expand", sorigin);
  if (layer == "Mamba1") {
    c.arch = Arch::Mamba1;
    c.d_state = get_int(ssm, "d_state", sorigin, 16, false);
    c.d_inner = c.expand * c.d_model;  // both bounded: no overflow
    c.dt_rank = read_dt_rank(ssm, "dt_rank", sorigin, c.d_model);
    return c;
  }
  if (layer != "Mamba2") throw Error(origin + ": ssm_cfg.layer is " + json_excerpt(layer) + "; only Mamba1 and Mamba2 are supported");
  c.d_state = get_int(ssm, "d_state", sorigin, 128, false);
  c.head_dim = get_int(ssm, "headdim", sorigin, 64, false);
  c.n_groups = get_int(ssm, "ngroups", sorigin, 1, false);
  c.chunk_size = get_int(ssm, "chunk_size", sorigin, 256, false);
  if (get_bool(ssm, "norm_before_gate", sorigin, false)) throw Error(sorigin + ": norm_before_gate=true is not supported");
  if (!get_bool(ssm, "rmsnorm", sorigin, true)) throw Error(sorigin + ": rmsnorm=false (no gated norm) is not supported");
  if (ssm.contains("d_ssm") && !ssm["d_ssm"].is_null()) throw Error(sorigin + ": d_ssm (an SSM narrower than d_inner) is not supported");
  read_time_step_limit(ssm, "dt_limit", sorigin, c);
  // n_heads is derived: check its inputs before dividing by one of them.
  check_range(c.head_dim, "headdim", sorigin);
  if (c.expand * c.d_model % c.head_dim != 0) throw Error(sorigin + ": expand*d_model is not a multiple of headdim");
  c.n_heads = c.expand * c.d_model / c.head_dim;
  return c;
}

// HF MambaConfig (model_type "mamba").
Config from_hf_mamba1_json(const json& j, const std::string& origin) {
  Config c;
  c.arch = Arch::Mamba1;
  c.d_model = get_int(j, "hidden_size", origin, 0, true);
  c.n_layer = get_int(j, "num_hidden_layers", origin, 0, true);
  c.vocab_size = get_int(j, "vocab_size", origin, 0, true);
  c.d_state = get_int(j, "state_size", origin, 16, false);
  c.expand = get_int(j, "expand", origin, 2, false);
  check_range(c.d_model, "hidden_size", origin);
  check_range(c.expand, "expand", origin);
  c.d_inner = get_int(j, "intermediate_size", origin, c.expand * c.d_model, false);
  c.d_conv = get_int(j, "conv_kernel", origin, 4, false);
  c.dt_rank = read_dt_rank(j, "time_step_rank", origin, c.d_model);
  c.conv_bias = get_bool(j, "use_conv_bias", origin, true);
  c.use_bias = get_bool(j, "use_bias", origin, false);
  c.residual_in_fp32 = get_bool(j, "residual_in_fp32", origin, true);
  c.tie_embeddings = get_bool(j, "tie_word_embeddings", origin, true);
  c.norm_eps = get_double(j, "layer_norm_epsilon", origin, 1e-5);
  if (j.contains("hidden_act") && j["hidden_act"] != "silu")
    throw Error(origin + ": hidden_act " + json_excerpt(j["hidden_act"]) + " is not supported (silu only)");
  c.bos_token_id = get_int(j, "bos_token_id", origin, -1, false);
  c.eos_token_id = get_int(j, "eos_token_id", origin, -1, false);
  c.pad_token_id = get_int(j, "pad_token_id", origin, -1, false);
  return c;
}

}  // namespace

const char* arch_name(Arch a) { return a == Arch::Mamba1 ? "Mamba-1" : "Mamba-2"; }

Config Config::from_json_text(const std::string& text, const std::string& origin) {
  json j = parse_json_lenient(text, origin);
  if (!j.is_object()) throw Error(origin + ": top level must be a JSON object");
  Config c;
  if (j.contains("d_model") && !j.contains("hidden_size")) {
    c = from_mamba_ssm_json(j, origin);
  } else if (j.contains("model_type") && j["model_type"] == "mamba") {
    c = from_hf_mamba1_json(j, origin);
  } else {
    if (j.contains("model_type") && j["model_type"].is_string() && j["model_type"] != "mamba2")
      throw Error(origin + ": model_type is " + json_excerpt(j["model_type"]) + "; only \"mamba\" and \"mamba2\" are supported");
    c.d_model = get_int(j, "hidden_size", origin, 0, true);
    c.n_layer = get_int(j, "num_hidden_layers", origin, 0, true);
    c.vocab_size = get_int(j, "vocab_size", origin, 0, true);
    c.d_state = get_int(j, "state_size", origin, 128, false);
    c.n_heads = get_int(j, "num_heads", origin, 128, false);
    c.head_dim = get_int(j, "head_dim", origin, 64, false);
    c.expand = get_int(j, "expand", origin, 2, false);
    c.n_groups = get_int(j, "n_groups", origin, 8, false);
    c.chunk_size = get_int(j, "chunk_size", origin, 256, false);
    c.d_conv = get_int(j, "conv_kernel", origin, 4, false);
    c.conv_bias = get_bool(j, "use_conv_bias", origin, true);
    c.use_bias = get_bool(j, "use_bias", origin, false);
    c.residual_in_fp32 = get_bool(j, "residual_in_fp32", origin, true);
    c.tie_embeddings = get_bool(j, "tie_word_embeddings", origin, false);
    c.norm_eps = get_double(j, "layer_norm_epsilon", origin, 1e-5);
    if (!get_bool(j, "rms_norm", origin, true)) throw Error(origin + ": field 'rms_norm' is false (only RMSNorm models are supported)");
    if (get_bool(j, "norm_before_gate", origin, false)) throw Error(origin + ": field 'norm_before_gate' is true (not supported)");
    read_time_step_limit(j, "time_step_limit", origin, c);
    c.bos_token_id = get_int(j, "bos_token_id", origin, -1, false);
    c.eos_token_id = get_int(j, "eos_token_id", origin, -1, false);
    c.pad_token_id = get_int(j, "pad_token_id", origin, -1, false);
  }
  c.finalize(origin);
  return c;
}

Config Config::from_file(const std::string& path) {
  std::string p = path;
  std::error_code ec;
  if (std::filesystem::is_directory(p, ec)) p = (std::filesystem::path(p) / "config.json").string();
  if (std::filesystem::symlink_status(p, ec).type() == std::filesystem::file_type::not_found) throw Error(p + ": file not found");
  return from_json_text(read_text_file(p, uint64_t(16) << 20), p);
}

void Config::finalize(const std::string& origin) {
  check_range(d_model, "hidden_size", origin);
  check_range(n_layer, "num_hidden_layers", origin);
  check_range(d_state, "state_size", origin);
  check_range(d_conv, "conv_kernel", origin);
  check_range(vocab_size, "vocab_size", origin);
  // RMSNorm adds epsilon to a mean square of O(1): above 1 it swamps the signal (1e300 zeroes every
  // output), below the smallest normal float it vanishes in float32.
  if (!(norm_eps >= 1.2e-38 && norm_eps <= 1.0))
    throw Error(origin + ": field 'layer_norm_epsilon' must be a positive number no larger than 1, got " + nlohmann::json(norm_eps).dump());
  for (auto [v, name] : {std::pair{bos_token_id, "bos_token_id"}, {eos_token_id, "eos_token_id"}, {pad_token_id, "pad_token_id"}})
    if (v >= vocab_size) throw Error(origin + ": field '" + std::string(name) + "' (" + std::to_string(v) + ") is outside the vocabulary");
  if (vocab_valid <= 0) vocab_valid = vocab_size;
  if (vocab_valid > vocab_size)
    throw Error(origin + ": the vocabulary (" + std::to_string(vocab_valid) + ") is larger than the embedding (" +
                std::to_string(vocab_size) + " rows)");
  if (arch == Arch::Mamba1) {
    check_range(d_inner, "intermediate_size", origin);
    check_range(dt_rank, "time_step_rank", origin);
    if (dt_rank > d_inner)
      throw Error(origin + ": time_step_rank (" + std::to_string(dt_rank) + ") exceeds d_inner (" + std::to_string(d_inner) + ")");
    expand = d_inner % d_model == 0 ? d_inner / d_model : 0;  // informational only
    n_heads = d_inner;                                        // every channel is a head of one channel
    head_dim = 1;
    n_groups = 1;
    if (chunk_size <= 0) chunk_size = 256;
    dt_min = 0.0;
    dt_max = INFINITY;
    conv_dim = d_inner;
    d_in_proj = 2 * d_inner;
    d_x_proj = dt_rank + 2 * d_state;
    heads_per_group = d_inner;
    // Each factor is at most 2^20 here; the parameter count bounds every size derived from them.
    int64_t per_layer = mul_add(d_in_proj, d_model + 1, 0, origin);
    per_layer = mul_add(d_inner, d_conv + 1, per_layer, origin);
    per_layer = mul_add(d_x_proj, d_inner, per_layer, origin);
    per_layer = mul_add(d_inner, dt_rank + d_state + 2, per_layer, origin);
    per_layer = mul_add(d_model, d_inner + 2, per_layer, origin);
    const int64_t params = mul_add(n_layer, per_layer, mul_add(2 * vocab_size, d_model, d_model, origin), origin);
    if (params > kMaxParams) throw Error(origin + ": the config describes " + std::to_string(params) + " parameters, implausibly many");
    return;
  }
  check_range(n_heads, "num_heads", origin);
  check_range(head_dim, "head_dim", origin);
  check_range(expand, "expand", origin);
  check_range(n_groups, "n_groups", origin);
  check_range(chunk_size, "chunk_size", origin);
  // Each factor is at most 2^20 here, so these products and sums cannot overflow.
  if (n_heads * head_dim != expand * d_model)
    throw Error(origin + ": num_heads (" + std::to_string(n_heads) + ") x head_dim (" + std::to_string(head_dim) + ") must equal expand (" +
                std::to_string(expand) + ") x hidden_size (" + std::to_string(d_model) + ")");
  if (n_heads % n_groups != 0)
    throw Error(origin + ": num_heads (" + std::to_string(n_heads) + ") must be divisible by n_groups (" + std::to_string(n_groups) + ")");
  if (std::isnan(dt_min) || std::isnan(dt_max) || dt_min < 0 || dt_max < dt_min)
    throw Error(origin + ": field 'time_step_limit' must be [min, max] with 0 <= min <= max");
  d_inner = n_heads * head_dim;
  conv_dim = mul_add(2 * n_groups, d_state, d_inner, origin);
  d_in_proj = mul_add(2 * n_groups, d_state, 2 * d_inner + n_heads, origin);
  d_x_proj = 0;
  heads_per_group = n_heads / n_groups;
  // Every size the loader and the backends compute from here on is a product of at most two of these
  // and stays below the parameter count.
  int64_t per_layer = mul_add(d_in_proj, d_model + 1, 0, origin);
  per_layer = mul_add(conv_dim, d_conv + 1, per_layer, origin);
  per_layer = mul_add(d_model, d_inner + 2, per_layer + 3 * n_heads + d_inner, origin);
  const int64_t params = mul_add(n_layer, per_layer, mul_add(2 * vocab_size, d_model, d_model, origin), origin);
  if (params > kMaxParams) throw Error(origin + ": the config describes " + std::to_string(params) + " parameters, implausibly many");
  // The recurrent state is allocated per sequence without a file behind it: bound it too.
  const int64_t state = mul_add(n_layer, mul_add(d_inner, d_state, conv_dim * (d_conv - 1), origin), 0, origin);
  if (state > kMaxStateFloats)
    throw Error(origin + ": the config describes a state of " + std::to_string(state) + " floats per sequence, implausibly many");
}

int64_t Config::n_params() const {
  int64_t per_layer = 0;
  if (arch == Arch::Mamba1) {
    per_layer = d_model                                             // norm
                + d_in_proj * d_model + (use_bias ? d_in_proj : 0)  // in_proj
                + d_inner * d_conv + (conv_bias ? d_inner : 0)      // conv1d
                + d_x_proj * d_inner                                // x_proj
                + d_inner * dt_rank + d_inner                       // dt_proj (+ bias)
                + d_inner * d_state + d_inner                       // A_log, D
                + d_model * d_inner + (use_bias ? d_model : 0);     // out_proj
  } else {
    per_layer = d_model  // norm
                + d_in_proj * d_model + (use_bias ? d_in_proj : 0) + conv_dim * d_conv + (conv_bias ? conv_dim : 0) +
                3 * n_heads  // dt_bias, A_log, D
                + d_inner    // gated norm
                + d_model * d_inner + (use_bias ? d_model : 0);
  }
  return vocab_size * d_model * (tie_embeddings ? 1 : 2) + n_layer * per_layer + d_model;
}

std::string Config::summary() const {
  std::ostringstream s;
  if (arch == Arch::Mamba1) {
    s << "Mamba-1, layers " << n_layer << ", d_model " << d_model << ", d_inner " << d_inner << ", d_state " << d_state << ", dt_rank "
      << dt_rank << ", conv " << d_conv;
  } else {
    s << "layers " << n_layer << ", d_model " << d_model << ", heads " << n_heads << "x" << head_dim << ", d_state " << d_state
      << ", groups " << n_groups << ", conv " << d_conv << ", chunk " << chunk_size;
  }
  s << ", vocab " << vocab_size << (vocab_valid < vocab_size ? " (" + std::to_string(vocab_valid) + " used)" : std::string())
    << (tie_embeddings ? " (tied)" : "") << ", params " << n_params();
  return s.str();
}

Config Config::mamba1(int64_t d_model, int64_t n_layer, int64_t vocab_size, int64_t d_inner, int64_t d_state, int64_t d_conv,
                      int64_t dt_rank) {
  Config c;
  c.arch = Arch::Mamba1;
  c.d_model = d_model;
  c.n_layer = n_layer;
  c.vocab_size = vocab_size;
  c.d_inner = d_inner;
  c.d_state = d_state;
  c.d_conv = d_conv;
  c.dt_rank = dt_rank;
  c.conv_bias = true;
  c.use_bias = false;
  c.tie_embeddings = true;
  return c;
}

Config Config::preset(const std::string& name) {
  // state-spaces/mamba-*: d_state 16, expand 2, conv 4, dt_rank ceil(D/16), vocab 50277 padded to 50280.
  if (name.rfind("mamba1-", 0) == 0) {
    const std::string size = name.substr(7);
    int64_t D = 0, L = 0;
    if (size == "130m") D = 768, L = 24;
    else if (size == "370m") D = 1024, L = 48;
    else if (size == "790m") D = 1536, L = 48;
    else if (size == "1.4b") D = 2048, L = 48;
    else if (size == "2.8b") D = 2560, L = 64;
    else
      throw Error("unknown --config '" + name +
                  "' (known Mamba-1 shapes: mamba1-130m, mamba1-370m, mamba1-790m, mamba1-1.4b, mamba1-2.8b)");
    Config c = mamba1(D, L, 50280, 2 * D, 16, 4, (D + 15) / 16);
    c.vocab_valid = 50277;
    c.bos_token_id = 0;
    c.eos_token_id = 0;
    c.pad_token_id = 0;
    c.finalize("preset " + name);
    return c;
  }
  // state-spaces/mamba2-*: d_state 128, headdim 64, expand 2, ngroups 1, conv 4, chunk 256, vocab 50277 padded to 50288.
  Config c;
  if (name == "130m") {
    c.d_model = 768;
    c.n_layer = 24;
  } else if (name == "370m") {
    c.d_model = 1024;
    c.n_layer = 48;
  } else if (name == "780m") {
    c.d_model = 1536;
    c.n_layer = 48;
  } else if (name == "1.3b") {
    c.d_model = 2048;
    c.n_layer = 48;
  } else if (name == "2.7b") {
    c.d_model = 2560;
    c.n_layer = 64;
  } else
    throw Error("unknown --config '" + name + "' (known: 130m, 370m, 780m, 1.3b, 2.7b; Mamba-1: mamba1-130m, mamba1-370m, mamba1-790m, " +
                "mamba1-1.4b, mamba1-2.8b)");
  c.vocab_size = 50288;
  c.vocab_valid = 50277;
  c.d_state = 128;
  c.head_dim = 64;
  c.expand = 2;
  c.n_groups = 1;
  c.chunk_size = 256;
  c.d_conv = 4;
  c.n_heads = c.expand * c.d_model / c.head_dim;
  c.tie_embeddings = true;
  c.dt_min = 0.0;
  c.dt_max = INFINITY;
  c.bos_token_id = 0;
  c.eos_token_id = 0;
  c.pad_token_id = 0;
  c.finalize("preset " + name);
  return c;
}

}  // namespace mamba
