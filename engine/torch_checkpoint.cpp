#include "engine/torch_checkpoint.h"

#include <zip.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>

#include "engine/error.h"
#include "engine/input_file.h"
#include "engine/pickle.h"

namespace mamba {

namespace {

size_t elem_size(const std::string& dtype) { return dtype == "F32" ? 4 : 2; }

// Throws when `path` is not a zip archive, naming the legacy torch format when it is one.
void check_zip_magic(const std::string& path) {
  const InputFile f(path);  // a regular file only: libzip must not be handed a FIFO
  unsigned char head[16] = {};
  const uint64_t got = std::min<uint64_t>(f.size(), sizeof head);
  f.read(0, head, got);
  if (got >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4) return;
  // torch.save before 1.6 (or with _use_new_zipfile_serialization=False): a pickle starting with the
  // magic number 0x1950a86a20f9469cfc6c as a LONG1, or an old tar archive.
  static const unsigned char legacy[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  if (got >= 14 && std::memcmp(head, legacy, sizeof legacy) == 0)
    throw Error(path +
                ": this is PyTorch's legacy (pre-1.6, non-zip) format, which is not supported; re-save it with a current "
                "torch.save (or convert it to safetensors)");
  if (got >= 2 && head[0] == 0x80)
    throw Error(path + ": a bare pickle, not a torch.save zip archive; the legacy non-zip PyTorch format is not supported");
  throw Error(path + ": not a PyTorch checkpoint (expected a torch.save zip archive)");
}

// Entry names must stay inside the archive: relative, no '..' component, no backslash or NUL.
bool safe_entry_name(const std::string& n) {
  if (n.empty() || n[0] == '/' || n.find('\\') != std::string::npos || n.find('\0') != std::string::npos) return false;
  size_t i = 0;
  while (i <= n.size()) {
    size_t j = n.find('/', i);
    if (j == std::string::npos) j = n.size();
    const std::string part = n.substr(i, j - i);
    if (part == ".." || (part.empty() && j != n.size())) return false;
    if (part.size() >= 2 && part[1] == ':') return false;  // a drive letter
    i = j + 1;
  }
  return true;
}

class Zip {
 public:
  explicit Zip(const std::string& path) : m_path(path) {
    int err = 0;
    m_z = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &err);
    if (!m_z) {
      zip_error_t e;
      zip_error_init_with_code(&e, err);
      const std::string msg = zip_error_strerror(&e);
      zip_error_fini(&e);
      throw Error(path + ": not a readable zip archive (" + msg + ")");
    }
  }
  ~Zip() {
    if (m_z) zip_discard(m_z);
  }
  Zip(const Zip&) = delete;
  Zip& operator=(const Zip&) = delete;
  zip_t* get() const { return m_z; }

  // Reads exactly `n` bytes of entry `index` (its declared size was checked to be n).
  void read(uint64_t index, const std::string& name, uint8_t* out, uint64_t n) const {
    zip_file_t* f = zip_fopen_index(m_z, index, 0);
    if (!f) throw Error(m_path + ": entry '" + name + "' cannot be opened (" + zip_strerror(m_z) + ")");
    uint64_t done = 0;
    while (done < n) {
      const zip_int64_t got = zip_fread(f, out + done, n - done);
      if (got <= 0) {
        const std::string msg = got < 0 ? zip_file_strerror(f) : "it ends early";
        zip_fclose(f);
        throw Error(m_path + ": entry '" + name + "' cannot be read (" + msg + ")");
      }
      done += static_cast<uint64_t>(got);
    }
    zip_fclose(f);
  }

 private:
  std::string m_path;
  zip_t* m_z = nullptr;
};

struct Entry {
  uint64_t index = 0;
  uint64_t size = 0;
};

class TorchZipSource final : public TensorSource {
 public:
  TorchZipSource(const std::string& path, const TorchZipLimits& lim) : m_origin(path), m_zip(path) {
    m_file_bytes = std::filesystem::file_size(path);
    const zip_int64_t n = zip_get_num_entries(m_zip.get(), 0);
    if (n < 0 || static_cast<uint64_t>(n) > lim.max_entries) throw Error(path + ": implausible number of archive entries");
    std::map<std::string, Entry> entries;
    std::string pkl;
    for (zip_int64_t i = 0; i < n; ++i) {
      zip_stat_t st;
      zip_stat_init(&st);
      if (zip_stat_index(m_zip.get(), static_cast<uint64_t>(i), 0, &st) != 0 || !(st.valid & ZIP_STAT_NAME) || !(st.valid & ZIP_STAT_SIZE))
        throw Error(path + ": archive entry " + std::to_string(i) + " cannot be read");
      const std::string name = st.name;
      if (!safe_entry_name(name)) throw Error(path + ": archive entry '" + name + "' escapes the archive (absolute or '..' path)");
      entries[name] = {static_cast<uint64_t>(i), st.size};
      const size_t slash = name.find('/');
      if (slash != std::string::npos && name.substr(slash) == "/data.pkl") {
        if (!pkl.empty()) throw Error(path + ": more than one data.pkl in the archive");
        pkl = name;
        m_prefix = name.substr(0, slash + 1);
      }
    }
    if (pkl.empty()) throw Error(path + ": no <name>/data.pkl in the archive (not a torch.save checkpoint)");
    if (auto it = entries.find(m_prefix + "byteorder"); it != entries.end()) {
      if (it->second.size > 16) throw Error(path + ": implausible byteorder entry");
      std::string bo(it->second.size, '\0');
      m_zip.read(it->second.index, it->first, reinterpret_cast<uint8_t*>(bo.data()), bo.size());
      if (bo != "little") throw Error(path + ": a " + bo + "-endian checkpoint (only little-endian is supported)");
    }
    const Entry& pe = entries[pkl];
    if (pe.size > lim.max_pickle_bytes)
      throw Error(path + ": data.pkl declares " + std::to_string(pe.size) + " bytes, more than a state dict needs (limit " +
                  std::to_string(lim.max_pickle_bytes) + "); refused");
    std::string bytes(pe.size, '\0');
    m_zip.read(pe.index, pkl, reinterpret_cast<uint8_t*>(bytes.data()), bytes.size());
    const pickle::ValuePtr root = pickle::load(bytes, path + " (" + pkl + ")");
    if (root->kind != pickle::Value::Kind::Dict) throw Error(path + ": data.pkl does not hold a state dict (a dictionary of tensors)");

    for (const auto& [k, v] : root->entries) {
      if (k->kind != pickle::Value::Kind::String) throw Error(path + ": a state dict key that is not a string");
      if (v->kind != pickle::Value::Kind::Tensor) throw Error(path + ": state dict entry '" + k->s + "' is not a tensor");
      if (m_tensors.count(k->s)) throw Error(path + ": tensor '" + k->s + "' appears twice");
      const pickle::TensorRef& t = v->tensor;
      auto e = entries.find(m_prefix + "data/" + t.storage.key);
      if (e == entries.end()) throw Error(path + ": tensor '" + k->s + "' points to storage '" + t.storage.key + "', which is missing");
      const uint64_t es = elem_size(t.storage.dtype);
      if (t.storage.numel < 0 || static_cast<uint64_t>(t.storage.numel) > e->second.size / es || e->second.size != t.storage.numel * es)
        throw Error(path + ": storage '" + t.storage.key + "' declares " + std::to_string(t.storage.numel) +
                    " elements but its entry holds " + std::to_string(e->second.size) + " bytes");
      // The last element the view reaches must lie inside the storage (overflow-safe).
      uint64_t numel = 1, last = static_cast<uint64_t>(t.offset);
      for (size_t d = 0; d < t.size.size(); ++d) {
        const uint64_t sz = static_cast<uint64_t>(t.size[d]), sd = static_cast<uint64_t>(t.stride[d]);
        if (sz != 0 && numel > (uint64_t(1) << 40) / sz) throw Error(path + ": tensor '" + k->s + "' has an implausible size");
        numel *= sz;
        if (sz > 0) {
          if (sd > (uint64_t(1) << 40)) throw Error(path + ": tensor '" + k->s + "' has an implausible stride");
          last += (sz - 1) * sd;
        }
      }
      if (numel > 0 && last >= static_cast<uint64_t>(t.storage.numel))
        throw Error(path + ": tensor '" + k->s + "' reaches element " + std::to_string(last) + " of a storage of " +
                    std::to_string(t.storage.numel));
      TensorInfo info{k->s, t.storage.dtype, t.size, numel * es};
      m_tensors[k->s] = {info, t, e->second};
      m_names.push_back(k->s);
    }
  }

  const std::string& origin() const override { return m_origin; }
  std::vector<std::string> names() const override { return m_names; }
  const TensorInfo* find(const std::string& name) const override {
    auto it = m_tensors.find(name);
    return it == m_tensors.end() ? nullptr : &it->second.info;
  }
  uint64_t file_bytes() const override { return m_file_bytes; }
  std::string format() const override { return "PyTorch zip (torch.save)"; }

  void read_f32(const TensorInfo& info, float* out) const override {
    auto it = m_tensors.find(info.name);
    if (it == m_tensors.end()) throw Error(m_origin + ": no tensor '" + info.name + "'");
    const Stored& s = it->second;
    const size_t es = elem_size(s.ref.storage.dtype);
    std::vector<uint8_t> buf(s.entry.size);
    m_zip.read(s.entry.index, m_prefix + "data/" + s.ref.storage.key, buf.data(), buf.size());
    const int64_t n = info.numel(), dims = static_cast<int64_t>(s.ref.size.size());
    // The usual case: the view is the whole storage, row-major.
    bool whole = s.ref.offset == 0 && n == s.ref.storage.numel;
    for (int64_t d = dims - 1, expect = 1; whole && d >= 0; expect *= s.ref.size[d], --d)
      whole = s.ref.size[d] == 1 || s.ref.stride[d] == expect;
    if (whole) return convert(s.ref.storage.dtype, buf.data(), n, out);
    // Otherwise gather the view by its strides.
    std::vector<int64_t> idx(static_cast<size_t>(dims), 0);
    std::vector<uint8_t> dense(static_cast<size_t>(n) * es);
    for (int64_t i = 0; i < n; ++i) {
      int64_t off = s.ref.offset;
      for (int64_t d = 0; d < dims; ++d) off += idx[d] * s.ref.stride[d];
      std::memcpy(dense.data() + i * es, buf.data() + off * es, es);
      for (int64_t d = dims - 1; d >= 0; --d) {
        if (++idx[d] < s.ref.size[d]) break;
        idx[d] = 0;
      }
    }
    convert(s.ref.storage.dtype, dense.data(), n, out);
  }

 private:
  static void convert(const std::string& dtype, const uint8_t* src, int64_t n, float* out) {
    if (dtype == "F32") std::memcpy(out, src, static_cast<size_t>(n) * 4);
    else if (dtype == "F16") f16_to_f32(src, n, out);
    else bf16_to_f32(src, n, out);
  }
  struct Stored {
    TensorInfo info;
    pickle::TensorRef ref;
    Entry entry;
  };
  std::string m_origin;
  Zip m_zip;
  std::string m_prefix;  // "<name>/"
  uint64_t m_file_bytes = 0;
  std::map<std::string, Stored> m_tensors;
  std::vector<std::string> m_names;
};

}  // namespace

std::unique_ptr<TensorSource> open_torch_checkpoint(const std::string& path, const TorchZipLimits& limits) {
  check_zip_magic(path);
  return std::make_unique<TorchZipSource>(path, limits);
}

}  // namespace mamba
