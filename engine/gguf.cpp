#include "engine/gguf.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "engine/error.h"
#include "engine/input_file.h"

namespace mamba {

namespace {

using VT = GgufValue::Type;

constexpr uint32_t kMaxDims = 4;
constexpr uint64_t kMaxName = 64;  // GGML_MAX_NAME, terminator included

struct TypeInfo {
  const char* name;
  int64_t block;  // elements per block
  int64_t bytes;  // bytes per block; 0: not a tensor type this reader can size
};

TypeInfo type_info(uint32_t t) {
  switch (t) {
    case 0: return {"F32", 1, 4};
    case 1: return {"F16", 1, 2};
    case 2: return {"Q4_0", 32, 18};
    case 3: return {"Q4_1", 32, 20};
    case 6: return {"Q5_0", 32, 22};
    case 7: return {"Q5_1", 32, 24};
    case 8: return {"Q8_0", 32, 34};
    case 9: return {"Q8_1", 32, 36};
    case 10: return {"Q2_K", 256, 0};
    case 11: return {"Q3_K", 256, 0};
    case 12: return {"Q4_K", 256, 0};
    case 13: return {"Q5_K", 256, 0};
    case 14: return {"Q6_K", 256, 0};
    case 15: return {"Q8_K", 256, 0};
    case 24: return {"I8", 1, 1};
    case 25: return {"I16", 1, 2};
    case 26: return {"I32", 1, 4};
    case 27: return {"I64", 1, 8};
    case 28: return {"F64", 1, 8};
    case 30: return {"BF16", 1, 2};
    default: return {nullptr, 0, 0};
  }
}

bool supported_type(uint32_t t) { return t == 0 || t == 1 || t == 8 || t == 30; }

size_t scalar_size(VT t) {
  switch (t) {
    case VT::U8:
    case VT::I8:
    case VT::Bool: return 1;
    case VT::U16:
    case VT::I16: return 2;
    case VT::U32:
    case VT::I32:
    case VT::F32: return 4;
    case VT::U64:
    case VT::I64:
    case VT::F64: return 8;
    case VT::String: return 8;  // at least its length
    case VT::Array: return 12;  // at least its element type and count
  }
  return 0;
}

// Sequential reads of the header through a window of the file: every length is checked against the
// bytes that remain before it is read or allocated.
class Cursor {
 public:
  Cursor(const InputFile& f, const std::string& path) : m_f(f), m_n(f.size()), m_path(path) {}
  uint64_t pos() const { return m_pos; }
  uint64_t left() const { return m_n - m_pos; }
  [[noreturn]] void fail(const std::string& what) const { throw Error(m_path + ": " + what); }
  const uint8_t* take(uint64_t n, const char* what) {
    if (n > left())
      fail(std::string(what) + " at byte " + std::to_string(m_pos) + " needs " + std::to_string(n) + " bytes, the file has " +
           std::to_string(left()) + " left");
    if (m_pos < m_start || m_pos + n > m_start + m_buf.size()) {
      m_start = m_pos;
      m_buf.resize(static_cast<size_t>(std::max<uint64_t>(n, std::min<uint64_t>(kWindow, left()))));
      m_f.read(m_start, m_buf.data(), m_buf.size());
    }
    const uint8_t* p = m_buf.data() + (m_pos - m_start);
    m_pos += n;
    return p;
  }
  template <typename T>
  T get(const char* what) {
    T v;
    std::memcpy(&v, take(sizeof(T), what), sizeof(T));
    return v;
  }
  std::string str(const char* what, uint64_t max_len) {
    const uint64_t n = get<uint64_t>(what);
    if (n > max_len) fail(std::string(what) + " of " + std::to_string(n) + " bytes is longer than the limit of " + std::to_string(max_len));
    const uint8_t* p = take(n, what);
    return std::string(reinterpret_cast<const char*>(p), n);
  }

 private:
  static constexpr uint64_t kWindow = 1 << 20;
  const InputFile& m_f;
  uint64_t m_n, m_pos = 0, m_start = 0;
  std::vector<uint8_t> m_buf;
  const std::string& m_path;
};

VT value_type(Cursor& c, const std::string& key) {
  const uint32_t t = c.get<uint32_t>("value type");
  if (t > static_cast<uint32_t>(VT::F64)) c.fail("metadata '" + key + "' has an unknown value type " + std::to_string(t));
  return static_cast<VT>(t);
}

// One scalar of type t into v (ints / floats / s).
void read_scalar(Cursor& c, VT t, GgufValue& v, const std::string& key) {
  switch (t) {
    case VT::U8: v.i = c.get<uint8_t>("u8"); break;
    case VT::I8: v.i = c.get<int8_t>("i8"); break;
    case VT::U16: v.i = c.get<uint16_t>("u16"); break;
    case VT::I16: v.i = c.get<int16_t>("i16"); break;
    case VT::U32: v.i = c.get<uint32_t>("u32"); break;
    case VT::I32: v.i = c.get<int32_t>("i32"); break;
    case VT::I64: v.i = c.get<int64_t>("i64"); break;
    case VT::U64: {
      const uint64_t u = c.get<uint64_t>("u64");
      if (u > uint64_t(INT64_MAX)) c.fail("metadata '" + key + "' holds a u64 too large to use");
      v.i = static_cast<int64_t>(u);
      break;
    }
    case VT::F32: v.f = c.get<float>("f32"); break;
    case VT::F64: v.f = c.get<double>("f64"); break;
    case VT::Bool: {
      const uint8_t b = c.get<uint8_t>("bool");
      if (b > 1) c.fail("metadata '" + key + "' holds a bool that is neither 0 nor 1");
      v.i = b;
      break;
    }
    case VT::String: v.s = c.str("string", c.left()); break;
    case VT::Array: c.fail("metadata '" + key + "': arrays of arrays are not supported");
  }
}

bool is_float(VT t) { return t == VT::F32 || t == VT::F64; }

}  // namespace

size_t GgufValue::size() const { return elem == VT::String ? strings.size() : is_float(elem) ? floats.size() : ints.size(); }

const char* ggml_type_name(uint32_t type) {
  const char* n = type_info(type).name;
  return n ? n : "?";
}

GgufFile::GgufFile(const std::string& path) : m_path(path), m_file(std::make_unique<InputFile>(path)) {
  const uint64_t size = m_file->size();
  Cursor c(*m_file, m_path);
  if (size < 24) c.fail("too short for a GGUF header (" + std::to_string(size) + " bytes)");
  if (std::memcmp(c.take(4, "magic"), "GGUF", 4) != 0) c.fail("not a GGUF file (no 'GGUF' magic)");
  m_version = c.get<uint32_t>("version");
  if (m_version == 1) c.fail("GGUF version 1 is not supported (versions 2 and 3 are)");
  if (m_version != 2 && m_version != 3) c.fail("unknown GGUF version " + std::to_string(m_version) + " (or a big-endian file)");
  const uint64_t n_tensors = c.get<uint64_t>("tensor count");
  const uint64_t n_kv = c.get<uint64_t>("metadata count");
  // Every entry takes at least this many bytes, so counts the file cannot hold are refused before
  // anything is allocated for them.
  if (n_kv > c.left() / (8 + 4 + 1)) c.fail("metadata count " + std::to_string(n_kv) + " does not fit in the file");
  if (n_tensors > c.left() / (8 + 4 + 8 + 4 + 8)) c.fail("tensor count " + std::to_string(n_tensors) + " does not fit in the file");

  for (uint64_t k = 0; k < n_kv; ++k) {
    const std::string key = c.str("metadata key", 65535);
    if (key.empty()) c.fail("metadata key #" + std::to_string(k) + " is empty");
    if (m_kv.count(key)) c.fail("duplicate metadata key '" + key + "'");
    GgufValue v;
    v.type = value_type(c, key);
    if (v.type == VT::Array) {
      v.elem = value_type(c, key);
      if (v.elem == VT::Array) c.fail("metadata '" + key + "': arrays of arrays are not supported");
      const uint64_t n = c.get<uint64_t>("array length");
      if (n > c.left() / scalar_size(v.elem))
        c.fail("metadata '" + key + "' declares " + std::to_string(n) + " elements, more than the file holds");
      if (v.elem == VT::String) v.strings.reserve(n);
      else if (is_float(v.elem)) v.floats.reserve(n);
      else v.ints.reserve(n);
      for (uint64_t i = 0; i < n; ++i) {
        GgufValue e;
        read_scalar(c, v.elem, e, key);
        if (v.elem == VT::String) v.strings.push_back(std::move(e.s));
        else if (is_float(v.elem)) v.floats.push_back(e.f);
        else v.ints.push_back(e.i);
      }
    } else {
      read_scalar(c, v.type, v, key);
    }
    m_kv.emplace(key, std::move(v));
  }

  uint64_t alignment = 32;
  if (const GgufValue* a = find("general.alignment")) {
    if (a->type != VT::U32) c.fail("general.alignment must be a u32");
    if (a->i == 0 || (a->i & (a->i - 1)) != 0) c.fail("general.alignment " + std::to_string(a->i) + " is not a power of two");
    alignment = static_cast<uint64_t>(a->i);
  }

  std::set<std::string> names;
  m_tensors.reserve(n_tensors);
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensor t;
    t.name = c.str("tensor name", kMaxName - 1);
    const std::string where = "tensor '" + t.name + "'";
    if (t.name.empty()) c.fail("tensor #" + std::to_string(k) + " has an empty name");
    if (!names.insert(t.name).second) c.fail("duplicate " + where);
    const uint32_t n_dims = c.get<uint32_t>("dimension count");
    if (n_dims == 0 || n_dims > kMaxDims) c.fail(where + " has " + std::to_string(n_dims) + " dimensions (1 to 4 are valid)");
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = c.get<uint64_t>("dimension");
      if (ne == 0 || ne > uint64_t(INT64_MAX)) c.fail(where + " has dimension " + std::to_string(d) + " of size " + std::to_string(ne));
      if (numel > (uint64_t(1) << 50) / ne) c.fail(where + " has more elements than any model holds");
      numel *= ne;
      t.ne.push_back(static_cast<int64_t>(ne));
    }
    t.type = c.get<uint32_t>("tensor type");
    const TypeInfo ti = type_info(t.type);
    if (!ti.name) c.fail(where + " has unknown ggml type " + std::to_string(t.type));
    if (!supported_type(t.type))
      c.fail(where + " is " + ti.name + ", which this reader does not dequantise (F32, F16, BF16 and Q8_0 are supported)");
    if (t.ne[0] % ti.block != 0)
      c.fail(where + ": its first dimension " + std::to_string(t.ne[0]) + " is not a multiple of the " + ti.name + " block (" +
             std::to_string(ti.block) + ")");
    t.nbytes = numel / static_cast<uint64_t>(ti.block) * static_cast<uint64_t>(ti.bytes);
    t.offset = c.get<uint64_t>("tensor offset");
    if (t.offset % alignment != 0)
      c.fail(where + " has offset " + std::to_string(t.offset) + ", not a multiple of the alignment " + std::to_string(alignment));
    m_tensors.push_back(std::move(t));
  }

  m_data_begin = (c.pos() + alignment - 1) / alignment * alignment;
  if (m_data_begin > size) c.fail("the data section would start past the end of the file");
  const uint64_t data_size = size - m_data_begin;
  std::vector<const GgufTensor*> order;
  for (const auto& t : m_tensors) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      c.fail("tensor '" + t.name + "' [" + std::to_string(t.offset) + ", +" + std::to_string(t.nbytes) +
             ") lies outside the data section (" + std::to_string(data_size) + " bytes)");
    order.push_back(&t);
  }
  std::sort(order.begin(), order.end(), [](const GgufTensor* a, const GgufTensor* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < order.size(); ++i)
    if (order[i]->offset < order[i - 1]->offset + order[i - 1]->nbytes)
      c.fail("tensor '" + order[i]->name + "' overlaps tensor '" + order[i - 1]->name + "'");
}

GgufFile::~GgufFile() = default;

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = m_kv.find(key);
  return it == m_kv.end() ? nullptr : &it->second;
}

void GgufFile::read_tensor(const GgufTensor& t, void* dst) const { m_file->read(m_data_begin + t.offset, dst, t.nbytes); }
uint64_t GgufFile::file_bytes() const { return m_file->size(); }

// ---------------------------------------------------------------------------------------------------
// Model mapping

namespace {

int64_t meta_int(const GgufFile& f, const std::string& key, std::optional<int64_t> fallback = std::nullopt) {
  const GgufValue* v = f.find(key);
  if (!v) {
    if (fallback) return *fallback;
    throw Error(f.path() + ": missing metadata '" + key + "'");
  }
  if (v->type == VT::String || v->type == VT::Array || is_float(v->type) || v->type == VT::Bool)
    throw Error(f.path() + ": metadata '" + key + "' must be an integer");
  return v->i;
}

double meta_float(const GgufFile& f, const std::string& key, double fallback) {
  const GgufValue* v = f.find(key);
  if (!v) return fallback;
  if (!is_float(v->type)) throw Error(f.path() + ": metadata '" + key + "' must be a float");
  return v->f;
}

std::string meta_string(const GgufFile& f, const std::string& key) {
  const GgufValue* v = f.find(key);
  if (!v) return "";
  if (v->type != VT::String) throw Error(f.path() + ": metadata '" + key + "' must be a string");
  return v->s;
}

const GgufTensor* tensor(const GgufFile& f, const std::string& name) {
  for (const auto& t : f.tensors())
    if (t.name == name) return &t;
  return nullptr;
}

std::string arch_of(const GgufFile& f) {
  const std::string a = meta_string(f, "general.architecture");
  if (a.empty()) throw Error(f.path() + ": missing metadata 'general.architecture'");
  if (a != "mamba" && a != "mamba2")
    throw Error(f.path() + ": architecture '" + a + "' is not a Mamba model (mamba and mamba2 are supported)");
  return a;
}

// GGUF name -> (Hugging Face name, the HF shape as a function of the GGUF one) for one architecture.
struct Mapped {
  std::string name;
  std::vector<int64_t> shape;
};

Mapped map_tensor(const GgufTensor& t, const Config& c, bool m2) {
  std::vector<int64_t> shape(t.ne.rbegin(), t.ne.rend());  // torch order
  auto layer_part = [&](const std::string& n, std::string& rest) -> int64_t {
    if (n.rfind("blk.", 0) != 0) return -1;
    const size_t dot = n.find('.', 4);
    if (dot == std::string::npos) return -1;
    const std::string idx = n.substr(4, dot - 4);
    if (idx.empty() || idx.size() > 6 || !std::all_of(idx.begin(), idx.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) return -1;
    rest = n.substr(dot + 1);
    return std::stoll(idx);
  };
  if (t.name == "token_embd.weight") return {"backbone.embeddings.weight", shape};
  if (t.name == "output_norm.weight") return {"backbone.norm_f.weight", shape};
  if (t.name == "output.weight") return {"lm_head.weight", shape};
  std::string rest;
  const int64_t l = layer_part(t.name, rest);
  if (l < 0) return {t.name, shape};
  const std::string p = "backbone.layers." + std::to_string(l) + ".";
  int64_t numel = 1;
  for (int64_t d : t.ne) numel *= d;
  if (rest == "attn_norm.weight") return {p + "norm.weight", shape};
  if (rest == "ssm_in.weight") return {p + "mixer.in_proj.weight", shape};
  if (rest == "ssm_in.bias") return {p + "mixer.in_proj.bias", shape};
  if (rest == "ssm_conv1d.weight" && shape.size() == 2) return {p + "mixer.conv1d.weight", {shape[0], 1, shape[1]}};
  if (rest == "ssm_conv1d.bias") return {p + "mixer.conv1d.bias", shape};
  if (rest == "ssm_x.weight") return {p + "mixer.x_proj.weight", shape};
  if (rest == "ssm_dt.weight") return {p + "mixer.dt_proj.weight", shape};
  if (rest == "ssm_dt.bias") return {p + (m2 ? "mixer.dt_bias" : "mixer.dt_proj.bias"), shape};
  if (rest == "ssm_a") return {p + "mixer.A", m2 && numel == c.n_heads ? std::vector<int64_t>{c.n_heads} : shape};
  if (rest == "ssm_d") return {p + "mixer.D", m2 && numel == c.n_heads ? std::vector<int64_t>{c.n_heads} : shape};
  if (rest == "ssm_norm.weight") return {p + "mixer.norm.weight", numel == c.d_inner ? std::vector<int64_t>{c.d_inner} : shape};
  if (rest == "ssm_out.weight") return {p + "mixer.out_proj.weight", shape};
  if (rest == "ssm_out.bias") return {p + "mixer.out_proj.bias", shape};
  return {t.name, shape};
}

class GgufSource final : public TensorSource {
 public:
  GgufSource(std::shared_ptr<const GgufFile> f, const Config& c) : m_f(std::move(f)), m_origin(m_f->path()) {
    const bool m2 = !c.mamba1();
    for (const auto& t : m_f->tensors()) {
      Mapped m = map_tensor(t, c, m2);
      if (m_infos.count(m.name)) throw Error(m_origin + ": two tensors map to '" + m.name + "'");
      m_infos[m.name] = {TensorInfo{m.name, ggml_type_name(t.type), m.shape, t.nbytes}, &t};
      m_names.push_back(m.name);
    }
  }
  const std::string& origin() const override { return m_origin; }
  std::vector<std::string> names() const override { return m_names; }
  const TensorInfo* find(const std::string& name) const override {
    auto it = m_infos.find(name);
    return it == m_infos.end() ? nullptr : &it->second.first;
  }
  void read_f32(const TensorInfo& info, float* out) const override {
    auto it = m_infos.find(info.name);
    if (it == m_infos.end()) throw Error(m_origin + ": no tensor '" + info.name + "'");
    const GgufTensor& t = *it->second.second;
    const int64_t n = info.numel();
    if (t.type == 0) return m_f->read_tensor(t, out);
    std::vector<uint8_t> buf(t.nbytes);
    m_f->read_tensor(t, buf.data());
    switch (t.type) {
      case 1: f16_to_f32(buf.data(), n, out); break;
      case 30: bf16_to_f32(buf.data(), n, out); break;
      case 8: q8_0_to_f32(buf.data(), n, out); break;
      default: throw Error(m_origin + ": tensor '" + t.name + "' has an unsupported type");
    }
  }
  uint64_t file_bytes() const override { return m_f->file_bytes(); }
  std::string format() const override { return "GGUF v" + std::to_string(m_f->version()); }

 private:
  std::shared_ptr<const GgufFile> m_f;
  std::string m_origin;
  std::map<std::string, std::pair<TensorInfo, const GgufTensor*>> m_infos;
  std::vector<std::string> m_names;
};

}  // namespace

Config gguf_config(const GgufFile& f) {
  const std::string a = arch_of(f);
  const GgufTensor* emb = tensor(f, "token_embd.weight");
  if (!emb || emb->ne.size() != 2) throw Error(f.path() + ": missing a 2-D tensor 'token_embd.weight'");
  const int64_t D = meta_int(f, a + ".embedding_length"), L = meta_int(f, a + ".block_count");
  const int64_t E = meta_int(f, a + ".ssm.inner_size"), N = meta_int(f, a + ".ssm.state_size");
  const int64_t K = meta_int(f, a + ".ssm.conv_kernel"), R = meta_int(f, a + ".ssm.time_step_rank");
  const int64_t V = emb->ne[1];
  if (emb->ne[0] != D)
    throw Error(f.path() + ": token_embd.weight has rows of " + std::to_string(emb->ne[0]) + ", embedding_length says " +
                std::to_string(D));
  Config c;
  if (a == "mamba") {
    if (const GgufValue* v = f.find(a + ".ssm.dt_b_c_rms"); v && v->i != 0)
      throw Error(f.path() + ": ssm.dt_b_c_rms is set (Falcon-Mamba's extra norms are not supported)");
    c = Config::mamba1(D, L, V, E, N, K, R);
  } else {
    c.d_model = D;
    c.n_layer = L;
    c.vocab_size = V;
    c.d_state = N;
    c.d_conv = K;
    c.n_heads = R;
    c.n_groups = meta_int(f, a + ".ssm.group_count", 1);
    if (R <= 0 || E % R != 0) throw Error(f.path() + ": ssm.inner_size (" + std::to_string(E) + ") is not a multiple of the head count");
    if (D <= 0 || E % D != 0) throw Error(f.path() + ": ssm.inner_size (" + std::to_string(E) + ") is not a multiple of embedding_length");
    c.head_dim = E / R;
    c.expand = E / D;
    c.chunk_size = 256;
    c.dt_min = 0.0;
    c.dt_max = INFINITY;
  }
  c.norm_eps = meta_float(f, a + ".attention.layer_norm_rms_epsilon", 1e-5);
  const std::string p = "blk.0.";
  c.conv_bias = tensor(f, p + "ssm_conv1d.bias") != nullptr;
  c.use_bias = tensor(f, p + "ssm_in.bias") != nullptr;
  c.tie_embeddings = tensor(f, "output.weight") == nullptr;
  c.bos_token_id = meta_int(f, "tokenizer.ggml.bos_token_id", -1);
  c.eos_token_id = meta_int(f, "tokenizer.ggml.eos_token_id", -1);
  c.pad_token_id = meta_int(f, "tokenizer.ggml.padding_token_id", -1);
  for (int64_t* id : {&c.bos_token_id, &c.eos_token_id, &c.pad_token_id})
    if (*id >= V) *id = -1;  // converters write ids of tokens the model may lack; they are not used
  c.finalize(f.path());
  return c;
}

std::unique_ptr<TensorSource> open_gguf_tensors(std::shared_ptr<const GgufFile> f, const Config& c) {
  return std::make_unique<GgufSource>(std::move(f), c);
}

std::optional<GgufTokenizer> gguf_tokenizer(const GgufFile& f) {
  const std::string model = meta_string(f, "tokenizer.ggml.model");
  if (model.empty()) return std::nullopt;
  if (model != "gpt2")
    throw Error(f.path() + ": tokenizer.ggml.model '" + model + "' cannot be used (only byte-level BPE, 'gpt2', is supported)");
  const GgufValue* tokens = f.find("tokenizer.ggml.tokens");
  const GgufValue* merges = f.find("tokenizer.ggml.merges");
  const GgufValue* types = f.find("tokenizer.ggml.token_type");
  if (!tokens || tokens->type != VT::Array || tokens->elem != VT::String) throw Error(f.path() + ": tokenizer.ggml.tokens is missing");
  if (!merges || merges->type != VT::Array || merges->elem != VT::String) throw Error(f.path() + ": tokenizer.ggml.merges is missing");
  if (types && (types->type != VT::Array || types->size() != tokens->size()))
    throw Error(f.path() + ": tokenizer.ggml.token_type does not match the token list");
  GgufTokenizer out;
  const std::string pre = meta_string(f, "tokenizer.ggml.pre");
  static const std::set<std::string> gpt2_regex = {"gpt-2", "gpt2", "phi-2", "olmo", "roberta-bpe"};
  if (pre.empty()) out.note = "no pre-tokenizer recorded, GPT-2 rules assumed";
  else if (!gpt2_regex.count(pre))
    throw Error(f.path() + ": tokenizer.ggml.pre '" + pre + "' splits text differently from GPT-2, which is the only rule supported");
  nlohmann::json vocab = nlohmann::json::object(), added = nlohmann::json::array();
  std::set<std::string> seen;
  int64_t n_valid = 0;
  for (size_t i = 0; i < tokens->strings.size(); ++i) {
    const int64_t type = types ? types->ints[i] : 1;
    if (type == 5) continue;  // UNUSED: padding
    if (type == 6) throw Error(f.path() + ": byte tokens (SentencePiece) in a gpt2 tokenizer");
    const std::string& s = tokens->strings[i];
    if (!seen.insert(s).second) throw Error(f.path() + ": token '" + s + "' appears twice in tokenizer.ggml.tokens");
    vocab[s] = static_cast<int64_t>(i);
    if (type == 3 || type == 4)
      added.push_back({{"id", static_cast<int64_t>(i)},
                       {"content", s},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", type == 4},
                       {"special", type == 3}});
    n_valid = static_cast<int64_t>(i) + 1;
  }
  nlohmann::json j = {{"version", "1.0"},
                      {"added_tokens", added},
                      {"normalizer", nullptr},
                      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
                      {"post_processor", nullptr},
                      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
                      {"model",
                       {{"type", "BPE"},
                        {"dropout", nullptr},
                        {"unk_token", nullptr},
                        {"continuing_subword_prefix", nullptr},
                        {"end_of_word_suffix", nullptr},
                        {"fuse_unk", false},
                        {"byte_fallback", false},
                        {"vocab", vocab},
                        {"merges", merges->strings}}}};
  try {
    out.json = j.dump();
  } catch (const nlohmann::json::exception&) {  // a token that is not UTF-8
    throw Error(f.path() + ": the tokenizer metadata holds a token that is not valid UTF-8");
  }
  out.n_valid = n_valid;
  return out;
}

}  // namespace mamba
