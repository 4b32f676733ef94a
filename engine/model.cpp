#include "engine/model.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>

#include "engine/checkpoint.h"
#include "engine/error.h"
#include "engine/safetensors.h"
#include "engine/tensor_source.h"

namespace mamba {

namespace fs = std::filesystem;

namespace {

struct Loader {
  const TensorSource& src;
  const LoadOptions& opt;
  uint64_t total = 0, done = 0;
  std::set<std::string> dtypes, used;

  const TensorInfo* find_any(std::initializer_list<std::string> names) {
    for (const auto& n : names)
      if (const TensorInfo* t = src.find(n)) return t;
    return nullptr;
  }

  void check_cancel() {
    if (opt.cancel && opt.cancel->load()) throw Error(src.origin() + ": loading cancelled");
  }

  // Tensor `name` (trying each alias) converted to f32, checking its shape.
  Tensor take(std::initializer_list<std::string> names, std::vector<int64_t> shape) {
    check_cancel();
    const TensorInfo* t = find_any(names);
    if (!t) throw Error(src.origin() + ": missing tensor '" + *names.begin() + "'");
    return take(*t, shape);
  }

  Tensor take(const TensorInfo& t, std::vector<int64_t> shape) {
    if (t.shape != shape) {
      TensorInfo want;
      want.shape = shape;
      throw Error(src.origin() + ": tensor '" + t.name + "' has shape " + t.shape_str() + ", config implies " + want.shape_str());
    }
    used.insert(t.name);
    dtypes.insert(t.dtype);
    Tensor out(static_cast<size_t>(t.numel()));
    src.read_f32(t, out.data());
    done += t.nbytes;
    if (opt.progress) opt.progress(done, total);
    return out;
  }

  Tensor take_optional(std::initializer_list<std::string> names, std::vector<int64_t> shape, bool expected) {
    const TensorInfo* t = find_any(names);
    if (!expected) {
      if (t) throw Error(src.origin() + ": unexpected tensor '" + t->name + "' (config says it should not exist)");
      return {};
    }
    return take(names, shape);
  }

  // A as stored: A_log (A = -exp(A_log)), or A itself (GGUF, mamba.c store -exp(A_log)).
  Tensor take_A(const std::string& p, std::vector<int64_t> shape) {
    if (src.find(p + "A_log")) {
      Tensor a = take({p + "A_log"}, shape);
      for (float& v : a) v = -std::exp(v);
      return a;
    }
    return take({p + "A"}, shape);
  }
};

void load_mamba2_layers(const Config& c, Loader& ld, Weights& w) {
  const int64_t D = c.d_model, E = c.d_inner, H = c.n_heads;
  w.layers.resize(static_cast<size_t>(c.n_layer));
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string p = "backbone.layers." + std::to_string(i) + ".";
    LayerWeights& l = w.layers[static_cast<size_t>(i)];
    l.norm = ld.take({p + "norm.weight"}, {D});
    l.in_proj = ld.take({p + "mixer.in_proj.weight"}, {c.d_in_proj, D});
    l.in_proj_bias = ld.take_optional({p + "mixer.in_proj.bias"}, {c.d_in_proj}, c.use_bias);
    l.conv_w = ld.take({p + "mixer.conv1d.weight"}, {c.conv_dim, 1, c.d_conv});
    l.conv_b = ld.take_optional({p + "mixer.conv1d.bias"}, {c.conv_dim}, c.conv_bias);
    l.dt_bias = ld.take({p + "mixer.dt_bias"}, {H});
    l.A = ld.take_A(p + "mixer.", {H});
    l.D = ld.take({p + "mixer.D"}, {H});
    l.gnorm = ld.take({p + "mixer.norm.weight"}, {E});
    l.out_proj = ld.take({p + "mixer.out_proj.weight"}, {D, E});
    l.out_proj_bias = ld.take_optional({p + "mixer.out_proj.bias"}, {D}, c.use_bias);
  }
}

void load_mamba1_layers(const Config& c, Loader& ld, Weights& w) {
  const int64_t D = c.d_model, E = c.d_inner, N = c.d_state, R = c.dt_rank;
  w.layers1.resize(static_cast<size_t>(c.n_layer));
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string p = "backbone.layers." + std::to_string(i) + ".";
    Mamba1LayerWeights& l = w.layers1[static_cast<size_t>(i)];
    l.norm = ld.take({p + "norm.weight"}, {D});
    l.in_proj = ld.take({p + "mixer.in_proj.weight"}, {2 * E, D});
    l.in_proj_bias = ld.take_optional({p + "mixer.in_proj.bias"}, {2 * E}, c.use_bias);
    l.conv_w = ld.take({p + "mixer.conv1d.weight"}, {E, 1, c.d_conv});
    l.conv_b = ld.take_optional({p + "mixer.conv1d.bias"}, {E}, c.conv_bias);
    l.x_proj = ld.take({p + "mixer.x_proj.weight"}, {R + 2 * N, E});
    l.dt_proj = ld.take({p + "mixer.dt_proj.weight"}, {E, R});
    l.dt_proj_bias = ld.take({p + "mixer.dt_proj.bias"}, {E});
    l.A = ld.take_A(p + "mixer.", {E, N});
    l.D = ld.take({p + "mixer.D"}, {E});
    l.out_proj = ld.take({p + "mixer.out_proj.weight"}, {D, E});
    l.out_proj_bias = ld.take_optional({p + "mixer.out_proj.bias"}, {D}, c.use_bias);
  }
}

}  // namespace

std::shared_ptr<Model> Model::from_source(const Config& config, const TensorSource& src, const LoadOptions& opt) {
  auto m = std::make_shared<Model>();
  m->config = config;
  m->source = src.origin();
  m->format = src.format();
  m->file_bytes = src.file_bytes();
  const Config& c = m->config;

  Loader ld{src, opt, 0, 0, {}, {}};
  for (const auto& n : src.names()) ld.total += src.find(n)->nbytes;
  if (opt.progress) opt.progress(0, ld.total);

  const int64_t D = c.d_model, V = c.vocab_size;
  Weights& w = m->weights;
  w.embedding = ld.take({"backbone.embeddings.weight", "backbone.embedding.weight"}, {V, D});
  if (c.mamba1()) load_mamba1_layers(c, ld, w);
  else load_mamba2_layers(c, ld, w);
  w.norm_f = ld.take({"backbone.norm_f.weight"}, {D});
  // HF semantics: tied configs use the embedding even if lm_head.weight was saved; a missing lm_head means tied.
  if (src.find("lm_head.weight") && !c.tie_embeddings) w.lm_head = ld.take({"lm_head.weight"}, {V, D});
  else ld.used.insert("lm_head.weight");
  m->config.tie_embeddings = w.lm_head.empty();
  for (const auto& n : src.names())
    if (!ld.used.count(n))
      throw Error(src.origin() + ": unexpected tensor '" + n + "' (not part of a " + arch_name(c.arch) + " model with this config)");
  m->source_dtype = ld.dtypes.size() == 1 ? *ld.dtypes.begin() : "mixed (";
  if (ld.dtypes.size() > 1) {
    for (const auto& d : ld.dtypes) m->source_dtype += (m->source_dtype.back() == '(' ? "" : ", ") + d;
    m->source_dtype += ")";
  }
  return m;
}

std::shared_ptr<const Model> Model::load(const std::string& path, const LoadOptions& opt) { return load_checkpoint(path, opt).model; }

std::shared_ptr<const Model> Model::random(const Config& c, uint64_t seed) {
  auto m = std::make_shared<Model>();
  m->config = c;
  m->source = "random";
  m->source_dtype = "F32";
  m->format = "random";
  std::mt19937_64 rng(seed);
  // Uniform with unit variance from a counter hash: parallel and deterministic, so 2.7b-sized weights fill fast.
  auto fill = [&](int64_t n, float scale, float offset) {
    Tensor t(static_cast<size_t>(n));
    const uint64_t key = rng();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      uint64_t z = key + 0x9e3779b97f4a7c15ull * uint64_t(i + 1);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      z ^= z >> 31;
      const float u = float(z >> 40) * (1.f / 16777216.f);  // [0, 1)
      t[static_cast<size_t>(i)] = offset + scale * 3.4641016f * (u - 0.5f);
    }
    return t;
  };
  const int64_t D = c.d_model, E = c.d_inner, H = c.n_heads, V = c.vocab_size;
  Weights& w = m->weights;
  w.embedding = fill(V * D, 0.02f, 0.f);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  if (c.mamba1()) {
    // mamba_simple.Mamba's initialisation: S4D-real A = -(1..N) per channel, dt in [1e-3, 0.1].
    const int64_t N = c.d_state, R = c.dt_rank;
    w.layers1.resize(static_cast<size_t>(c.n_layer));
    for (auto& l : w.layers1) {
      l.norm = fill(D, 0.1f, 1.f);
      l.in_proj = fill(2 * E * D, 1.f / std::sqrt(float(D)), 0.f);
      if (c.use_bias) l.in_proj_bias = fill(2 * E, 0.02f, 0.f);
      l.conv_w = fill(E * c.d_conv, 1.f / std::sqrt(float(c.d_conv)), 0.f);
      if (c.conv_bias) l.conv_b = fill(E, 0.02f, 0.f);
      l.x_proj = fill((R + 2 * N) * E, 1.f / std::sqrt(float(E)), 0.f);
      l.dt_proj = fill(E * R, 1.f / std::sqrt(float(R)), 0.f);
      l.dt_proj_bias.resize(static_cast<size_t>(E));
      l.A.resize(static_cast<size_t>(E * N));
      l.D.assign(static_cast<size_t>(E), 1.f);
      for (int64_t e = 0; e < E; ++e) {
        const float dt = std::exp(std::log(1e-3f) + u(rng) * (std::log(0.1f) - std::log(1e-3f)));
        l.dt_proj_bias[e] = dt + std::log(-std::expm1(-dt));
        for (int64_t n = 0; n < N; ++n) l.A[e * N + n] = -float(n + 1);
      }
      l.out_proj = fill(D * E, 1.f / std::sqrt(float(E)) / std::sqrt(2.f * c.n_layer), 0.f);
      if (c.use_bias) l.out_proj_bias = fill(D, 0.02f, 0.f);
    }
    w.norm_f = fill(D, 0.1f, 1.f);
    if (!c.tie_embeddings) w.lm_head = fill(V * D, 0.02f, 0.f);
    return m;
  }
  w.layers.resize(static_cast<size_t>(c.n_layer));
  for (auto& l : w.layers) {
    l.norm = fill(D, 0.1f, 1.f);
    l.in_proj = fill(c.d_in_proj * D, 1.f / std::sqrt(float(D)), 0.f);
    if (c.use_bias) l.in_proj_bias = fill(c.d_in_proj, 0.02f, 0.f);
    l.conv_w = fill(c.conv_dim * c.d_conv, 1.f / std::sqrt(float(c.d_conv)), 0.f);
    if (c.conv_bias) l.conv_b = fill(c.conv_dim, 0.02f, 0.f);
    l.dt_bias.resize(H);
    l.A.resize(H);
    l.D.resize(H);
    for (int64_t h = 0; h < H; ++h) {
      // dt in [1e-3, 0.1] as mamba_ssm initialises it; A in [1, 16].
      float dt = std::exp(std::log(1e-3f) + u(rng) * (std::log(0.1f) - std::log(1e-3f)));
      l.dt_bias[h] = dt + std::log(-std::expm1(-dt));
      l.A[h] = -(1.f + 15.f * u(rng));
      l.D[h] = 1.f;
    }
    l.gnorm = fill(E, 0.1f, 1.f);
    l.out_proj = fill(D * E, 1.f / std::sqrt(float(E)) / std::sqrt(2.f * c.n_layer), 0.f);
    if (c.use_bias) l.out_proj_bias = fill(D, 0.02f, 0.f);
  }
  w.norm_f = fill(D, 0.1f, 1.f);
  if (!c.tie_embeddings) w.lm_head = fill(V * D, 0.02f, 0.f);
  return m;
}

std::string default_model_dir() {
  if (const char* env = std::getenv("MAMBA_DEFAULT_MODEL"); env && *env) return env;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (fs::path cand : {exe.parent_path() / "models" / MAMBA_DEFAULT_MODEL_NAME,
                          exe.parent_path() / ".." / "share" / "mamba-studio" / "models" / MAMBA_DEFAULT_MODEL_NAME})
      if (fs::exists(cand / "config.json")) return cand.lexically_normal().string();
  }
  return MAMBA_DEFAULT_MODEL_DIR;
}

}  // namespace mamba
