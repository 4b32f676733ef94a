#include "engine/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/error.h"
#include "engine/input_file.h"
#include "engine/json_lenient.h"
#include "engine/tensor_source.h"

namespace mamba {

namespace fs = std::filesystem;

namespace {
constexpr size_t kMaxShards = 4096;  // each stays open while the model loads

// True when `p` names anything, a broken or looping symlink included: opening it then says what is wrong.
bool present(const fs::path& p) {
  std::error_code ec;
  return fs::symlink_status(p, ec).type() != fs::file_type::not_found && !ec;
}
}  // namespace

const char* dtype_name(DType d) {
  switch (d) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
  }
  return "?";
}

size_t dtype_size(DType d) { return d == DType::F32 ? 4 : 2; }

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string TensorView::shape_str() const {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << "]";
  return s.str();
}

namespace {

// Converts `n` values of dtype `d` from (possibly unaligned) bytes to float32.
void to_f32(DType d, const uint8_t* src, size_t n, float* out) {
  switch (d) {
    case DType::F32: std::memcpy(out, src, n * 4); break;
    case DType::BF16: bf16_to_f32(src, static_cast<int64_t>(n), out); break;
    case DType::F16: f16_to_f32(src, static_cast<int64_t>(n), out); break;
  }
}

}  // namespace

void convert_to_f32(const TensorView& t, float* out) {
  if (!t.file) throw Error("tensor '" + t.name + "' has no file to read from");
  if (t.dtype == DType::F32) {
    t.file->read(t.offset, out, t.nbytes);
    return;
  }
  // Half-width types go through a bounded buffer: the peak stays one block above the float32 result.
  const size_t esize = dtype_size(t.dtype), block = (size_t(1) << 22) / esize;
  std::vector<uint8_t> buf(std::min(t.nbytes, block * esize));
  for (size_t done = 0, n = t.nbytes / esize; done < n; done += block) {
    const size_t k = std::min(block, n - done);
    t.file->read(t.offset + done * esize, buf.data(), k * esize);
    to_f32(t.dtype, buf.data(), k, out + done);
  }
}

uint64_t safetensors_header_length(const uint8_t first8[8], uint64_t file_size, const std::string& path) {
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = hlen << 8 | first8[i];  // little-endian u64
  if (hlen < 2 || hlen > 100'000'000ull) throw Error(path + ": header length " + std::to_string(hlen) + " is out of bounds");
  if (hlen > file_size - 8)
    throw Error(path + ": header length " + std::to_string(hlen) + " runs past the end of the file (" + std::to_string(file_size) +
                " bytes)");
  return hlen;
}

SafetensorsTable parse_safetensors_header(const std::string& header, uint64_t file_size, const std::string& path) {
  SafetensorsTable table;
  nlohmann::json j;
  try {
    j = parse_json(header, path + ": header");
  } catch (const Error& e) {
    // "<path>: header: not valid JSON (...)" reads better as "<path>: header is not valid JSON (...)"
    std::string m = e.what();
    const std::string from = path + ": header: not valid JSON";
    if (m.rfind(from, 0) == 0) m = path + ": header is not valid JSON" + m.substr(from.size());
    throw Error(m);
  }
  if (!j.is_object()) throw Error(path + ": header must be a JSON object");
  if (8 + header.size() > file_size) throw Error(path + ": header runs past the end of the file");
  const uint64_t data_begin = 8 + header.size();
  const uint64_t data_size = file_size - data_begin;

  struct Span {
    uint64_t begin, end;
    std::string name;
  };
  std::vector<Span> spans;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) throw Error(path + ": __metadata__ must be an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) throw Error(path + ": __metadata__ value for '" + m.key() + "' must be a string");
        table.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = path + ": tensor '" + (name.size() > 200 ? name.substr(0, 200) + "..." : name) + "'";
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      throw Error(where + " must have dtype, shape and data_offsets");
    TensorView t;
    t.name = name;
    if (!v["dtype"].is_string()) throw Error(where + ": dtype must be a string");
    const std::string dt = v["dtype"].get<std::string>();
    if (dt == "F32") t.dtype = DType::F32;
    else if (dt == "F16") t.dtype = DType::F16;
    else if (dt == "BF16") t.dtype = DType::BF16;
    else throw Error(where + ": unsupported dtype '" + (dt.size() > 40 ? dt.substr(0, 40) + "..." : dt) + "' (supported: F32, F16, BF16)");
    if (!v["shape"].is_array()) throw Error(where + ": shape must be an array");
    if (v["shape"].size() > 8) throw Error(where + ": shape has " + std::to_string(v["shape"].size()) + " dimensions (at most 8)");
    uint64_t count = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) throw Error(where + ": shape entries must be non-negative integers");
      uint64_t dim = d.get<uint64_t>();
      if (dim != 0 && count > (uint64_t(1) << 62) / dim) throw Error(where + ": shape overflows");
      count *= dim;
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    const auto& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw Error(where + ": data_offsets must be [begin, end] with non-negative integers");
    uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
    if (e < b) throw Error(where + ": data_offsets end < begin");
    if (e > data_size)
      throw Error(where + ": data_offsets [" + std::to_string(b) + ", " + std::to_string(e) + ") lie outside the data section (" +
                  std::to_string(data_size) + " bytes)");
    const uint64_t expect = count * dtype_size(t.dtype);
    if (e - b != expect)
      throw Error(where + ": byte span " + std::to_string(e - b) + " does not match shape " + t.shape_str() + " x " + dt + " = " +
                  std::to_string(expect) + " bytes");
    t.offset = data_begin + b;
    t.nbytes = e - b;
    spans.push_back({b, e, name});
    table.tensors.emplace(name, std::move(t));
  }
  std::sort(spans.begin(), spans.end(),
            [](const Span& a, const Span& b) { return a.begin < b.begin || (a.begin == b.begin && a.end < b.end); });
  uint64_t pos = 0;
  for (const auto& s : spans) {
    if (s.begin < pos) throw Error(path + ": tensor '" + s.name + "' overlaps the previous tensor's bytes");
    if (s.begin > pos) throw Error(path + ": unused hole of " + std::to_string(s.begin - pos) + " bytes before tensor '" + s.name + "'");
    pos = s.end;
  }
  if (pos != data_size) throw Error(path + ": " + std::to_string(data_size - pos) + " trailing bytes after the last tensor");
  return table;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : m_file(std::make_unique<InputFile>(path)) {
  const uint64_t fsize = m_file->size();
  if (fsize < 8) throw Error(path + ": file too short for a safetensors header (" + std::to_string(fsize) + " bytes)");
  uint8_t first8[8];
  m_file->read(0, first8, 8);
  const uint64_t hlen = safetensors_header_length(first8, fsize, path);
  std::string header(static_cast<size_t>(hlen), '\0');
  m_file->read(8, header.data(), header.size());
  m_table = parse_safetensors_header(header, fsize, path);
  for (auto& [name, t] : m_table.tensors) t.file = m_file.get();
}

SafetensorsFile::~SafetensorsFile() = default;

TensorStore TensorStore::open_dir(const std::string& dir) {
  TensorStore st;
  const fs::path d(dir);
  const fs::path single = d / "model.safetensors";
  const fs::path index = d / "model.safetensors.index.json";
  if (present(single)) {
    st.m_origin = single.string();
    st.m_files.push_back(std::make_unique<SafetensorsFile>(single.string()));
  } else if (present(index)) {
    st.m_origin = index.string();
    auto j = parse_json_lenient(read_text_file(index.string(), uint64_t(64) << 20), index.string());
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      throw Error(index.string() + ": missing object 'weight_map'");
    std::map<std::string, size_t> file_idx;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string()) throw Error(index.string() + ": weight_map entry for '" + it.key() + "' must be a file name");
      const std::string fname = it.value().get<std::string>();
      if (fname.empty() || fname.find_first_of(std::string("/\\\0", 3)) != std::string::npos || fname == "." || fname == "..")
        throw Error(index.string() + ": shard name " + json_excerpt(it.value()) + " must be a plain file name in the same folder");
      if (!file_idx.count(fname)) {
        if (file_idx.size() >= kMaxShards) throw Error(index.string() + ": more than " + std::to_string(kMaxShards) + " shard files");
        const fs::path shard = d / fname;
        if (!present(shard)) throw Error(index.string() + ": shard '" + fname + "' does not exist");
        file_idx[fname] = st.m_files.size();
        st.m_files.push_back(std::make_unique<SafetensorsFile>(shard.string()));
      }
      const auto& shard_tensors = st.m_files[file_idx[fname]]->tensors();
      if (!shard_tensors.count(it.key()))
        throw Error(index.string() + ": tensor '" + it.key() + "' is mapped to '" + fname + "' but that shard does not contain it");
    }
    if (st.m_files.empty()) throw Error(index.string() + ": weight_map is empty");
  } else {
    throw Error(dir + ": no model.safetensors or model.safetensors.index.json found");
  }
  for (const auto& f : st.m_files) {
    for (const auto& [name, t] : f->tensors()) {
      if (st.m_index.count(name)) throw Error(f->file().path() + ": tensor '" + name + "' also appears in another shard");
      st.m_index[name] = &t;
    }
  }
  return st;
}

const TensorView* TensorStore::find(const std::string& name) const {
  auto it = m_index.find(name);
  return it == m_index.end() ? nullptr : it->second;
}

std::vector<std::string> TensorStore::names() const {
  std::vector<std::string> n;
  for (const auto& [k, v] : m_index) n.push_back(k);
  return n;
}

namespace {

// A TensorStore seen as a TensorSource (safetensors already use the Hugging Face names and shapes).
class SafetensorsSource final : public TensorSource {
 public:
  explicit SafetensorsSource(TensorStore store) : m_store(std::move(store)) {
    for (const auto& n : m_store.names()) {
      const TensorView* v = m_store.find(n);
      m_infos[n] = TensorInfo{n, dtype_name(v->dtype), v->shape, v->nbytes};
    }
  }
  const std::string& origin() const override { return m_store.origin(); }
  std::vector<std::string> names() const override { return m_store.names(); }
  const TensorInfo* find(const std::string& name) const override {
    auto it = m_infos.find(name);
    return it == m_infos.end() ? nullptr : &it->second;
  }
  std::string file_of(const std::string& name) const override {
    const TensorView* v = m_store.find(name);
    return v && v->file ? v->file->path() : m_store.origin();
  }
  void read_f32(const TensorInfo& t, float* out) const override {
    const TensorView* v = m_store.find(t.name);
    if (!v) throw Error(origin() + ": no tensor '" + t.name + "'");
    convert_to_f32(*v, out);
  }
  uint64_t file_bytes() const override { return m_store.total_file_bytes(); }
  std::string format() const override { return "safetensors"; }

 private:
  TensorStore m_store;
  std::map<std::string, TensorInfo> m_infos;
};

}  // namespace

std::unique_ptr<TensorSource> open_safetensors_dir(const std::string& dir) {
  return std::make_unique<SafetensorsSource>(TensorStore::open_dir(dir));
}

uint64_t TensorStore::total_file_bytes() const {
  uint64_t s = 0;
  for (const auto& f : m_files) s += f->file().size();
  return s;
}

}  // namespace mamba
