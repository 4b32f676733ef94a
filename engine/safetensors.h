#pragma once
// Read-only, validated view of .safetensors files (single or sharded), memory-mapped.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace mamba {

class TensorSource;

enum class DType { F32, F16, BF16 };
const char* dtype_name(DType d);
size_t dtype_size(DType d);

// RAII read-only mmap of a whole file.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return m_data; }
  size_t size() const { return m_size; }
  const std::string& path() const { return m_path; }
  // Tells the kernel the pages in [offset, offset+len) are no longer needed (keeps peak memory low).
  void release(size_t offset, size_t len) const;

 private:
  std::string m_path;
  const uint8_t* m_data = nullptr;
  size_t m_size = 0;
};

struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // may be unaligned
  size_t nbytes = 0;
  const MappedFile* file = nullptr;
  int64_t numel() const;
  std::string shape_str() const;
};

// Converts any supported dtype to float32 (handles unaligned sources).
void convert_to_f32(const TensorView& t, float* out);

// One .safetensors file; the header is fully validated in the constructor.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  const std::map<std::string, TensorView>& tensors() const { return m_tensors; }
  const std::map<std::string, std::string>& metadata() const { return m_metadata; }
  const MappedFile& file() const { return *m_file; }

 private:
  std::unique_ptr<MappedFile> m_file;
  std::map<std::string, TensorView> m_tensors;
  std::map<std::string, std::string> m_metadata;
};

// All tensors of a checkpoint folder: model.safetensors, or shards listed by model.safetensors.index.json.
class TensorStore {
 public:
  static TensorStore open_dir(const std::string& dir);
  const TensorView* find(const std::string& name) const;  // nullptr when absent
  std::vector<std::string> names() const;
  uint64_t total_file_bytes() const;
  const std::string& origin() const { return m_origin; }  // for error messages

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> m_files;
  std::map<std::string, const TensorView*> m_index;
  std::string m_origin;
};

// The folder's safetensors as a TensorSource (engine/tensor_source.h).
std::unique_ptr<TensorSource> open_safetensors_dir(const std::string& dir);

}  // namespace mamba
