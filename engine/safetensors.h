#pragma once
// Read-only, validated view of .safetensors files (single or sharded). Tensors are read with checked
// positional reads (engine/input_file.h), not memory-mapped: a file truncated while a model loads gives
// an error, never SIGBUS.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace mamba {

enum class DType { F32, F16, BF16 };
const char* dtype_name(DType d);
size_t dtype_size(DType d);

class InputFile;
class TensorSource;

struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t offset = 0;  // of the first byte in the file
  size_t nbytes = 0;
  const InputFile* file = nullptr;  // null in a table parsed without a file
  int64_t numel() const;
  std::string shape_str() const;
};

// Reads the tensor from its file and converts any supported dtype to float32 (numel() floats). Throws
// mamba::Error naming the file when it has changed underneath (truncated since it was opened).
void convert_to_f32(const TensorView& t, float* out);

// The first 8 bytes of a safetensors file: the header length, checked against the file's size.
uint64_t safetensors_header_length(const uint8_t first8[8], uint64_t file_size, const std::string& path);

struct SafetensorsTable {
  std::map<std::string, TensorView> tensors;  // offsets absolute in the file
  std::map<std::string, std::string> metadata;
};
// The JSON header of a file of `file_size` bytes (its data section starts at 8 + header.size()): every
// entry's dtype, shape and offsets validated, the data section covered exactly once. Throws
// mamba::Error naming `path` and the problem.
SafetensorsTable parse_safetensors_header(const std::string& header, uint64_t file_size, const std::string& path);

// One .safetensors file, open for reading; the header is fully validated in the constructor.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  const std::map<std::string, TensorView>& tensors() const { return m_table.tensors; }
  const std::map<std::string, std::string>& metadata() const { return m_table.metadata; }
  const InputFile& file() const { return *m_file; }

 private:
  std::unique_ptr<InputFile> m_file;
  SafetensorsTable m_table;
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
