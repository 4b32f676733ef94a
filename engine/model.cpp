#include "engine/model.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>

#include "engine/checkpoint.h"
#include "engine/error.h"
#include "engine/input_file.h"
#include "engine/safetensors.h"
#include "engine/tensor_source.h"

namespace mamba {

namespace fs = std::filesystem;

namespace {

// Names the first non-finite value of `v` (a tensor just read), or returns "" when all are finite.
std::string nonfinite(const float* v, size_t n) {
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(v[i])) {
      if (!bad) first = i;
      ++bad;
    }
  if (!bad) return "";
  return std::to_string(bad) + " non-finite value" + (bad > 1 ? "s" : "") + " (the first, " + (std::isnan(v[first]) ? "NaN" : "Inf") +
         ", at flat index " + std::to_string(first) + ")";
}

// Every tensor is looked up in two passes: the first (dry) only checks that each exists with the shape
// the config implies, so a config that promises more than the files hold is refused before anything is
// allocated; the second reads and converts.
struct Loader {
  const TensorSource& src;
  const LoadOptions& opt;
  bool dry = true;
  uint64_t total = 0, done = 0;
  std::set<std::string> dtypes, used;

  const TensorInfo* find_any(std::initializer_list<std::string> names) {
    for (const auto& n : names)
      if (const TensorInfo* t = src.find(n)) return t;
    return nullptr;
  }

  void check_cancel() {
    if (opt.cancel && opt.cancel->load()) throw Cancelled(src.origin() + ": loading cancelled");
  }

  // Tensor `name` (trying each alias) converted to f32, checking its shape and its values.
  Tensor take(std::initializer_list<std::string> names, std::vector<int64_t> shape) {
    check_cancel();
    const TensorInfo* t = find_any(names);
    if (!t) throw Error(src.origin() + ": missing tensor '" + *names.begin() + "'");
    if (t->shape != shape) {
      TensorInfo want;
      want.shape = shape;
      throw Error(src.file_of(t->name) + ": tensor '" + t->name + "' has shape " + t->shape_str() + ", config implies " + want.shape_str());
    }
    used.insert(t->name);
    if (dry) {
      total += t->nbytes;
      return {};
    }
    dtypes.insert(t->dtype);
    Tensor out(static_cast<size_t>(t->numel()));
    src.read_f32(*t, out.data());
    if (const std::string bad = nonfinite(out.data(), out.size()); !bad.empty())
      throw Error(src.file_of(t->name) + ": tensor '" + t->name + "' holds " + bad);
    done += t->nbytes;
    if (opt.progress) opt.progress(done, total);
    return out;
  }

  Tensor take_optional(std::initializer_list<std::string> names, std::vector<int64_t> shape, bool expected) {
    const TensorInfo* t = find_any(names);
    if (!expected) {
      if (t) throw Error(src.file_of(t->name) + ": unexpected tensor '" + t->name + "' (config says it should not exist)");
      return {};
    }
    return take(names, shape);
  }

  // A as stored: A_log (A = -exp(A_log)), or A itself (GGUF and mamba.c store -exp(A_log)).
  // With `a_log`, A_log as stored (or log(-A) when the file holds A) goes there too.
  Tensor take_A(const std::string& p, std::vector<int64_t> shape, Tensor* a_log = nullptr) {
    if (!src.find(p + "A_log")) {
      Tensor a = take({p + "A"}, shape);
      if (a_log) {
        a_log->resize(a.size());
        for (size_t i = 0; i < a.size(); ++i) (*a_log)[i] = std::log(-a[i]);
      }
      return a;
    }
    Tensor a = take({p + "A_log"}, shape);
    if (a_log) *a_log = a;
    for (float& v : a) v = -std::exp(v);
    if (!dry)
      if (const std::string bad = nonfinite(a.data(), a.size()); !bad.empty())
        throw Error(src.file_of(p + "A_log") + ": tensor '" + p + "A_log' overflows A = -exp(A_log): " + bad);
    return a;
  }

  void mamba2_layer(const Config& c, const std::string& p, LayerWeights& l) {
    const int64_t D = c.d_model, E = c.d_inner, H = c.n_heads;
    l.norm = take({p + "norm.weight"}, {D});
    l.in_proj = take({p + "mixer.in_proj.weight"}, {c.d_in_proj, D});
    l.in_proj_bias = take_optional({p + "mixer.in_proj.bias"}, {c.d_in_proj}, c.use_bias);
    l.conv_w = take({p + "mixer.conv1d.weight"}, {c.conv_dim, 1, c.d_conv});
    l.conv_b = take_optional({p + "mixer.conv1d.bias"}, {c.conv_dim}, c.conv_bias);
    l.dt_bias = take({p + "mixer.dt_bias"}, {H});
    // A_log is kept as stored for the float64 reference; GGUF stores A itself, recovered as log(-A).
    l.A = take_A(p + "mixer.", {H}, &l.A_log);
    l.D = take({p + "mixer.D"}, {H});
    l.gnorm = take({p + "mixer.norm.weight"}, {E});
    l.out_proj = take({p + "mixer.out_proj.weight"}, {D, E});
    l.out_proj_bias = take_optional({p + "mixer.out_proj.bias"}, {D}, c.use_bias);
  }

  void mamba1_layer(const Config& c, const std::string& p, Mamba1LayerWeights& l) {
    const int64_t D = c.d_model, E = c.d_inner, N = c.d_state, R = c.dt_rank;
    l.norm = take({p + "norm.weight"}, {D});
    l.in_proj = take({p + "mixer.in_proj.weight"}, {2 * E, D});
    l.in_proj_bias = take_optional({p + "mixer.in_proj.bias"}, {2 * E}, c.use_bias);
    l.conv_w = take({p + "mixer.conv1d.weight"}, {E, 1, c.d_conv});
    l.conv_b = take_optional({p + "mixer.conv1d.bias"}, {E}, c.conv_bias);
    l.x_proj = take({p + "mixer.x_proj.weight"}, {R + 2 * N, E});
    l.dt_proj = take({p + "mixer.dt_proj.weight"}, {E, R});
    l.dt_proj_bias = take({p + "mixer.dt_proj.bias"}, {E});
    l.A = take_A(p + "mixer.", {E, N});
    l.D = take({p + "mixer.D"}, {E});
    l.out_proj = take({p + "mixer.out_proj.weight"}, {D, E});
    l.out_proj_bias = take_optional({p + "mixer.out_proj.bias"}, {D}, c.use_bias);
  }

  // One pass over every tensor of the model, in file-independent order.
  void run(Model& m) {
    const Config& c = m.config;
    const int64_t D = c.d_model, V = c.vocab_size;
    Weights& w = m.weights;
    w.embedding = take({"backbone.embeddings.weight", "backbone.embedding.weight"}, {V, D});
    if (!dry) {
      if (c.mamba1()) w.layers1.resize(static_cast<size_t>(c.n_layer));
      else w.layers.resize(static_cast<size_t>(c.n_layer));
    }
    for (int64_t i = 0; i < c.n_layer; ++i) {
      const std::string p = "backbone.layers." + std::to_string(i) + ".";
      if (c.mamba1()) {
        Mamba1LayerWeights scratch;
        mamba1_layer(c, p, dry ? scratch : w.layers1[static_cast<size_t>(i)]);
      } else {
        LayerWeights scratch;
        mamba2_layer(c, p, dry ? scratch : w.layers[static_cast<size_t>(i)]);
      }
    }
    w.norm_f = take({"backbone.norm_f.weight"}, {D});
    // HF semantics: tied configs use the embedding even if lm_head.weight was saved; a missing lm_head means tied.
    if (src.find("lm_head.weight") && !c.tie_embeddings) w.lm_head = take({"lm_head.weight"}, {V, D});
    else used.insert("lm_head.weight");
  }
};

}  // namespace

std::shared_ptr<Model> Model::from_source(const Config& config, const TensorSource& src, const LoadOptions& opt) {
  auto m = std::make_shared<Model>();
  m->config = config;
  m->source = src.origin();
  m->format = src.format();
  m->file_bytes = src.file_bytes();
  const Config& c = m->config;
  // The cheapest bound first: every parameter takes at least a byte in the files (Q8_0 is the smallest
  // format read, 34 bytes per 32 values; the embedding is counted once: an untied config without
  // lm_head.weight is tied).
  const int64_t params = c.n_params() - (c.tie_embeddings ? 0 : c.vocab_size * c.d_model);
  if (static_cast<uint64_t>(params) > m->file_bytes)
    throw Error(src.origin() + ": the config describes " + std::to_string(params) + " parameters, but the weight files hold only " +
                std::to_string(m->file_bytes) + " bytes");
  Loader ld{src, opt, true, 0, 0, {}, {}};
  ld.run(*m);
  for (const auto& n : src.names())
    if (!ld.used.count(n))
      throw Error(src.file_of(n) + ": unexpected tensor '" + n + "' (not part of a " + arch_name(c.arch) + " model with this config)");
  ld.dry = false;
  ld.used.clear();
  if (opt.progress) opt.progress(0, ld.total);
  ld.run(*m);
  m->config.tie_embeddings = m->weights.lm_head.empty();
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
    l.A_log.resize(H);
    l.A.resize(H);
    l.D.resize(H);
    for (int64_t h = 0; h < H; ++h) {
      // dt in [1e-3, 0.1] as mamba_ssm initialises it; A in [1, 16].
      float dt = std::exp(std::log(1e-3f) + u(rng) * (std::log(0.1f) - std::log(1e-3f)));
      l.dt_bias[h] = dt + std::log(-std::expm1(-dt));
      l.A_log[h] = std::log(1.f + 15.f * u(rng));
      l.A[h] = -std::exp(l.A_log[h]);
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
