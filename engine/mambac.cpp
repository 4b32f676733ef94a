#include "engine/mambac.h"

#include <cstring>
#include <map>

#include "engine/error.h"
#include "engine/input_file.h"

namespace mamba {

namespace {

constexpr uint32_t kMagic = 0x4d616d62, kTokMagic = 0x4d62546b;
constexpr uint64_t kHeader = 256;

struct Header {
  int32_t n_layers, vocab_size, dim, d_inner, dt_rank, d_state, d_conv, shared;
};

Header read_header(const std::string& path) {
  const InputFile f(path);
  uint32_t head[10] = {};
  if (f.size() < sizeof head) throw Error(path + ": too short for a mamba.c header");
  f.read(0, head, sizeof head);
  if (head[0] != kMagic) throw Error(path + ": not a mamba.c model.bin (no 'Mamb' magic)");
  if (head[1] != 1) throw Error(path + ": mamba.c model.bin version " + std::to_string(head[1]) + " is not supported (version 1 is)");
  Header h;
  std::memcpy(&h, head + 2, sizeof h);
  return h;
}

}  // namespace

bool is_mambac_file(const std::string& path) {
  try {
    const InputFile f(path);
    uint32_t magic = 0;
    if (f.size() < 4) return false;
    f.read(0, &magic, 4);
    return magic == kMagic;
  } catch (const Error&) {
    return false;  // not a readable regular file
  }
}

Config mambac_config(const std::string& path) {
  const Header h = read_header(path);
  for (int32_t v : {h.n_layers, h.vocab_size, h.dim, h.d_inner, h.dt_rank, h.d_state, h.d_conv})
    if (v <= 0) throw Error(path + ": the mamba.c header holds a non-positive size");
  if (h.shared != 0 && h.shared != 1) throw Error(path + ": the mamba.c header's shared_classifier is neither 0 nor 1");
  const int64_t rounded = (int64_t(h.vocab_size) + 7) / 8 * 8;
  Config c = Config::mamba1(h.dim, h.n_layers, rounded, h.d_inner, h.d_state, h.d_conv, h.dt_rank);
  c.vocab_valid = h.vocab_size;
  c.tie_embeddings = h.shared == 1;
  c.conv_bias = true;
  c.finalize(path);
  return c;
}

namespace {

class MambacSource final : public TensorSource {
 public:
  MambacSource(const std::string& path, const Config& c) : m_origin(path), m_file(std::make_unique<InputFile>(path)) {
    const int64_t L = c.n_layer, D = c.d_model, E = c.d_inner, N = c.d_state, R = c.dt_rank, K = c.d_conv, V = c.vocab_size;
    // The size the header implies, checked against the file before the table (up to ten entries a layer) is built.
    using big = unsigned __int128;
    const big per_layer_floats = big(2 * E) * D + big(E) * K + E + big(R + 2 * N) * E + big(E) * R + E + big(E) * N + E + big(D) * E + D;
    const big want = kHeader + 4 * (big(V) * D * (c.tie_embeddings ? 1 : 2) + big(L) * per_layer_floats + D);
    if (want != big(m_file->size()))
      throw Error(path + ": the header implies " + (want >> 64 ? std::string("more than 2^64") : std::to_string(uint64_t(want))) +
                  " bytes, the file has " + std::to_string(m_file->size()) + " (a different layout, or a truncated file)");
    uint64_t off = kHeader;
    auto add = [&](const std::string& name, std::vector<int64_t> shape) {
      TensorInfo t{name, "F32", shape, 0};
      t.nbytes = static_cast<uint64_t>(t.numel()) * 4;
      m_tensors[name] = {t, off};
      m_names.push_back(name);
      off += t.nbytes;
    };
    auto per_layer = [&](const std::string& kind, std::vector<int64_t> shape) {
      for (int64_t l = 0; l < L; ++l) add("backbone.layers." + std::to_string(l) + "." + kind, shape);
    };
    add("backbone.embeddings.weight", {V, D});
    per_layer("mixer.in_proj.weight", {2 * E, D});
    per_layer("mixer.conv1d.weight", {E, 1, K});
    per_layer("mixer.conv1d.bias", {E});
    per_layer("mixer.x_proj.weight", {R + 2 * N, E});
    per_layer("mixer.dt_proj.weight", {E, R});
    per_layer("mixer.dt_proj.bias", {E});
    per_layer("mixer.A", {E, N});
    per_layer("mixer.D", {E});
    per_layer("mixer.out_proj.weight", {D, E});
    per_layer("norm.weight", {D});
    add("backbone.norm_f.weight", {D});
    if (!c.tie_embeddings) add("lm_head.weight", {V, D});
    if (off != m_file->size())
      throw Error(path + ": the header implies " + std::to_string(off) + " bytes, the file has " + std::to_string(m_file->size()) +
                  " (a different layout, or a truncated file)");
  }
  const std::string& origin() const override { return m_origin; }
  std::vector<std::string> names() const override { return m_names; }
  const TensorInfo* find(const std::string& name) const override {
    auto it = m_tensors.find(name);
    return it == m_tensors.end() ? nullptr : &it->second.first;
  }
  void read_f32(const TensorInfo& t, float* out) const override {
    auto it = m_tensors.find(t.name);
    if (it == m_tensors.end()) throw Error(m_origin + ": no tensor '" + t.name + "'");
    m_file->read(it->second.second, out, it->second.first.nbytes);
  }
  uint64_t file_bytes() const override { return m_file->size(); }
  std::string format() const override { return "mamba.c model.bin v1"; }

 private:
  std::string m_origin;
  std::unique_ptr<InputFile> m_file;
  std::map<std::string, std::pair<TensorInfo, uint64_t>> m_tensors;
  std::vector<std::string> m_names;
};

}  // namespace

std::unique_ptr<TensorSource> open_mambac(const std::string& path, const Config& c) { return std::make_unique<MambacSource>(path, c); }

std::vector<std::string> read_mambac_tokenizer(const std::string& path) {
  const std::string bytes = read_file(path, uint64_t(64) << 20);
  const uint8_t* d = reinterpret_cast<const uint8_t*>(bytes.data());
  const uint64_t n = bytes.size();
  if (n < 16) throw Error(path + ": too short for a mamba.c tokenizer.bin");
  uint32_t head[4];
  std::memcpy(head, d, 16);
  if (head[0] != kTokMagic) throw Error(path + ": not a mamba.c tokenizer.bin (no 'MbTk' magic)");
  if (head[1] != 1) throw Error(path + ": tokenizer.bin version " + std::to_string(head[1]) + " is not supported");
  if (head[2] > (n - 16) / 4) throw Error(path + ": tokenizer.bin declares more tokens than the file holds");
  std::vector<std::string> out;
  out.reserve(head[2]);
  uint64_t pos = 16;
  for (uint32_t i = 0; i < head[2]; ++i) {
    if (n - pos < 4) throw Error(path + ": tokenizer.bin ends inside token " + std::to_string(i));
    uint32_t len;
    std::memcpy(&len, d + pos, 4);
    pos += 4;
    if (len > head[3] || len > n - pos) throw Error(path + ": token " + std::to_string(i) + " of tokenizer.bin has an impossible length");
    out.emplace_back(reinterpret_cast<const char*>(d + pos), len);
    pos += len;
  }
  if (pos != n) throw Error(path + ": " + std::to_string(n - pos) + " trailing bytes after the last token");
  return out;
}

}  // namespace mamba
