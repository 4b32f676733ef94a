#include "engine/model.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>

#include "engine/error.h"
#include "engine/input_file.h"
#include "engine/safetensors.h"

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
  const TensorStore& store;
  const LoadOptions& opt;
  bool dry = true;
  uint64_t total = 0, done = 0;
  std::set<std::string> dtypes, used;

  const TensorView* find_any(std::initializer_list<std::string> names) {
    for (const auto& n : names)
      if (const TensorView* t = store.find(n)) return t;
    return nullptr;
  }

  void check_cancel() {
    if (opt.cancel && opt.cancel->load()) throw Cancelled(store.origin() + ": loading cancelled");
  }

  // Copies tensor `name` (trying each alias) converted to f32, checking its shape and its values.
  Tensor take(std::initializer_list<std::string> names, std::vector<int64_t> shape) {
    check_cancel();
    const TensorView* t = find_any(names);
    if (!t) throw Error(store.origin() + ": missing tensor '" + *names.begin() + "'");
    if (t->shape != shape) {
      TensorView want;
      want.shape = shape;
      throw Error(t->file->path() + ": tensor '" + t->name + "' has shape " + t->shape_str() + ", config implies " + want.shape_str());
    }
    used.insert(t->name);
    if (dry) {
      total += t->nbytes;
      return {};
    }
    dtypes.insert(dtype_name(t->dtype));
    Tensor out(static_cast<size_t>(t->numel()));
    convert_to_f32(*t, out.data());
    if (const std::string bad = nonfinite(out.data(), out.size()); !bad.empty())
      throw Error(t->file->path() + ": tensor '" + t->name + "' holds " + bad);
    done += t->nbytes;
    if (opt.progress) opt.progress(done, total);
    return out;
  }

  Tensor take_optional(std::initializer_list<std::string> names, std::vector<int64_t> shape, bool expected) {
    const TensorView* t = find_any(names);
    if (!expected) {
      if (t) throw Error(t->file->path() + ": unexpected tensor '" + t->name + "' (config says it should not exist)");
      return {};
    }
    return take(names, shape);
  }

  // One pass over every tensor of the model, in file-independent order.
  void run(Model& m) {
    const Config& c = m.config;
    const int64_t D = c.d_model, E = c.d_inner, H = c.n_heads, V = c.vocab_size;
    Weights& w = m.weights;
    w.embedding = take({"backbone.embeddings.weight", "backbone.embedding.weight"}, {V, D});
    if (!dry) w.layers.resize(static_cast<size_t>(c.n_layer));
    for (int64_t i = 0; i < c.n_layer; ++i) {
      const std::string p = "backbone.layers." + std::to_string(i) + ".";
      LayerWeights scratch;
      LayerWeights& l = dry ? scratch : w.layers[static_cast<size_t>(i)];
      l.norm = take({p + "norm.weight"}, {D});
      l.in_proj = take({p + "mixer.in_proj.weight"}, {c.d_in_proj, D});
      l.in_proj_bias = take_optional({p + "mixer.in_proj.bias"}, {c.d_in_proj}, c.use_bias);
      l.conv_w = take({p + "mixer.conv1d.weight"}, {c.conv_dim, 1, c.d_conv});
      l.conv_b = take_optional({p + "mixer.conv1d.bias"}, {c.conv_dim}, c.conv_bias);
      l.dt_bias = take({p + "mixer.dt_bias"}, {H});
      l.A_log = take({p + "mixer.A_log"}, {H});
      l.A.resize(l.A_log.size());
      for (size_t h = 0; h < l.A.size(); ++h) l.A[h] = -std::exp(l.A_log[h]);
      if (!dry)
        if (const std::string bad = nonfinite(l.A.data(), l.A.size()); !bad.empty())
          throw Error(store.find(p + "mixer.A_log")->file->path() + ": tensor '" + p + "mixer.A_log' overflows A = -exp(A_log): " + bad);
      l.D = take({p + "mixer.D"}, {H});
      l.gnorm = take({p + "mixer.norm.weight"}, {E});
      l.out_proj = take({p + "mixer.out_proj.weight"}, {D, E});
      l.out_proj_bias = take_optional({p + "mixer.out_proj.bias"}, {D}, c.use_bias);
    }
    w.norm_f = take({"backbone.norm_f.weight"}, {D});
    // HF semantics: tied configs use the embedding even if lm_head.weight was saved; a missing lm_head means tied.
    if (store.find("lm_head.weight") && !c.tie_embeddings) w.lm_head = take({"lm_head.weight"}, {V, D});
    else used.insert("lm_head.weight");
  }
};

}  // namespace

std::shared_ptr<const Model> Model::load(const std::string& dir, const LoadOptions& opt) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(dir + ": not a model folder (expected config.json + model.safetensors)");
  auto m = std::make_shared<Model>();
  m->config = Config::from_file(dir);
  m->source = dir;
  const Config& c = m->config;
  const TensorStore store = TensorStore::open_dir(dir);
  m->file_bytes = store.total_file_bytes();

  // The cheapest bound first: every parameter takes at least 2 bytes in the files (the embedding counted
  // once: an untied config without lm_head.weight is tied).
  const int64_t params = c.n_params() - (c.tie_embeddings ? 0 : c.vocab_size * c.d_model);
  if (2 * static_cast<uint64_t>(params) > m->file_bytes)
    throw Error(store.origin() + ": config.json describes " + std::to_string(params) + " parameters, but the weight files hold only " +
                std::to_string(m->file_bytes) + " bytes");
  Loader ld{store, opt, true, 0, 0, {}, {}};
  ld.run(*m);
  for (const auto& n : store.names())
    if (!ld.used.count(n))
      throw Error(store.find(n)->file->path() + ": unexpected tensor '" + n + "' (not part of a Mamba-2 model with this config)");
  ld.dry = false;
  ld.used.clear();
  if (opt.progress) opt.progress(0, ld.total);
  ld.run(*m);
  m->config.tie_embeddings = m->weights.lm_head.empty();
  m->source_dtype = ld.dtypes.size() == 1 ? *ld.dtypes.begin() : "mixed";
  return m;
}

std::shared_ptr<const Model> Model::random(const Config& c, uint64_t seed) {
  auto m = std::make_shared<Model>();
  m->config = c;
  m->source = "random";
  m->source_dtype = "F32";
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
  w.layers.resize(static_cast<size_t>(c.n_layer));
  std::uniform_real_distribution<float> u(0.f, 1.f);
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
