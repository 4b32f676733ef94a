#include "engine/model.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>

#include "engine/error.h"
#include "engine/safetensors.h"

namespace mamba {

namespace fs = std::filesystem;

namespace {

struct Loader {
  const TensorStore& store;
  const LoadOptions& opt;
  uint64_t total = 0, done = 0;
  std::set<std::string> dtypes, used;

  const TensorView* find_any(std::initializer_list<std::string> names) {
    for (const auto& n : names)
      if (const TensorView* t = store.find(n)) return t;
    return nullptr;
  }

  void check_cancel() {
    if (opt.cancel && opt.cancel->load()) throw Error(store.origin() + ": loading cancelled");
  }

  // Copies tensor `name` (trying each alias) converted to f32, checking its shape.
  Tensor take(std::initializer_list<std::string> names, std::vector<int64_t> shape) {
    check_cancel();
    const TensorView* t = find_any(names);
    if (!t) throw Error(store.origin() + ": missing tensor '" + *names.begin() + "'");
    if (t->shape != shape) {
      TensorView want;
      want.shape = shape;
      throw Error(store.origin() + ": tensor '" + t->name + "' has shape " + t->shape_str() + ", config implies " + want.shape_str());
    }
    used.insert(t->name);
    dtypes.insert(dtype_name(t->dtype));
    Tensor out(static_cast<size_t>(t->numel()));
    convert_to_f32(*t, out.data());
    // The copy is ours now; drop the mapped pages so peak memory stays near the converted size.
    t->file->release(static_cast<size_t>(t->data - t->file->data()), t->nbytes);
    done += t->nbytes;
    if (opt.progress) opt.progress(done, total);
    return out;
  }

  Tensor take_optional(std::initializer_list<std::string> names, std::vector<int64_t> shape, bool expected) {
    const TensorView* t = find_any(names);
    if (!expected) {
      if (t) throw Error(store.origin() + ": unexpected tensor '" + t->name + "' (config says it should not exist)");
      return {};
    }
    return take(names, shape);
  }
};

}  // namespace

std::shared_ptr<const Model> Model::load(const std::string& dir, const LoadOptions& opt) {
  if (!fs::is_directory(dir)) throw Error(dir + ": not a model folder (expected config.json + model.safetensors)");
  auto m = std::make_shared<Model>();
  m->config = Config::from_file(dir);
  m->source = dir;
  const Config& c = m->config;
  const TensorStore store = TensorStore::open_dir(dir);
  m->file_bytes = store.total_file_bytes();

  Loader ld{store, opt, 0, 0, {}, {}};
  for (const auto& n : store.names()) ld.total += store.find(n)->nbytes;
  if (opt.progress) opt.progress(0, ld.total);

  const int64_t D = c.d_model, E = c.d_inner, H = c.n_heads, V = c.vocab_size;
  Weights& w = m->weights;
  w.embedding = ld.take({"backbone.embeddings.weight", "backbone.embedding.weight"}, {V, D});
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
    l.A_log = ld.take({p + "mixer.A_log"}, {H});
    l.A.resize(l.A_log.size());
    for (size_t h = 0; h < l.A.size(); ++h) l.A[h] = -std::exp(l.A_log[h]);
    l.D = ld.take({p + "mixer.D"}, {H});
    l.gnorm = ld.take({p + "mixer.norm.weight"}, {E});
    l.out_proj = ld.take({p + "mixer.out_proj.weight"}, {D, E});
    l.out_proj_bias = ld.take_optional({p + "mixer.out_proj.bias"}, {D}, c.use_bias);
  }
  w.norm_f = ld.take({"backbone.norm_f.weight"}, {D});
  // HF semantics: tied configs use the embedding even if lm_head.weight was saved; a missing lm_head means tied.
  if (store.find("lm_head.weight") && !c.tie_embeddings) w.lm_head = ld.take({"lm_head.weight"}, {V, D});
  else ld.used.insert("lm_head.weight");
  m->config.tie_embeddings = w.lm_head.empty();
  for (const auto& n : store.names())
    if (!ld.used.count(n)) throw Error(store.origin() + ": unexpected tensor '" + n + "' (not part of a Mamba-2 model with this config)");
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
