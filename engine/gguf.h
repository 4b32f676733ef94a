#pragma once
// GGUF (llama.cpp's format, versions 2 and 3), validated as strictly as the safetensors reader: every
// count, length, shape, type, offset and the alignment is checked against the file size before anything
// is allocated or read. Models of the "mamba" and "mamba2" architectures as convert_hf_to_gguf.py writes
// them load through gguf_config() and open_gguf_tensors(): F32, F16, BF16 and Q8_0 tensors (dequantised
// at load), renamed and reshaped to the Hugging Face convention (A stays A = -exp(A_log)).
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/config.h"
#include "engine/tensor_source.h"

namespace mamba {

class InputFile;

struct GgufValue {
  enum class Type : uint32_t { U8, I8, U16, I16, U32, I32, F32, Bool, String, Array, U64, I64, F64 };
  Type type = Type::U8;
  Type elem = Type::U8;              // arrays: the element type (arrays of arrays are refused)
  int64_t i = 0;                     // integer and bool scalars (U64 above INT64_MAX is refused)
  double f = 0;                      // float scalars
  std::string s;                     // strings
  std::vector<int64_t> ints;         // integer / bool arrays
  std::vector<double> floats;        // float arrays
  std::vector<std::string> strings;  // string arrays
  size_t size() const;               // array length
};

struct GgufTensor {
  std::string name;
  std::vector<int64_t> ne;  // GGML order: ne[0] is the fastest-varying (contiguous) dimension
  uint32_t type = 0;        // ggml_type: 0 F32, 1 F16, 8 Q8_0, 30 BF16
  uint64_t offset = 0;      // relative to the data section
  uint64_t nbytes = 0;
};

class GgufFile {
 public:
  explicit GgufFile(const std::string& path);  // throws mamba::Error "<path>: <problem>"
  ~GgufFile();
  const std::string& path() const { return m_path; }
  uint32_t version() const { return m_version; }
  const std::map<std::string, GgufValue>& metadata() const { return m_kv; }
  const GgufValue* find(const std::string& key) const;
  const std::vector<GgufTensor>& tensors() const { return m_tensors; }
  // Reads the tensor's bytes (t.nbytes) into `dst`; throws if the file changed underneath.
  void read_tensor(const GgufTensor& t, void* dst) const;
  uint64_t file_bytes() const;

 private:
  std::string m_path;
  std::unique_ptr<InputFile> m_file;
  uint32_t m_version = 0;
  uint64_t m_data_begin = 0;
  std::map<std::string, GgufValue> m_kv;
  std::vector<GgufTensor> m_tensors;
};

const char* ggml_type_name(uint32_t type);  // "F32", "Q4_K", ...; "?" when unknown

// The model's hyper-parameters from the metadata (and the embedding's shape); throws for any other
// architecture or a missing / inconsistent key.
Config gguf_config(const GgufFile& f);
// The tensors under Hugging Face names and shapes. `f` must outlive the source.
std::unique_ptr<TensorSource> open_gguf_tensors(std::shared_ptr<const GgufFile> f, const Config& c);
// The tokenizer.json text equivalent to the GGUF's tokenizer metadata (model "gpt2": byte-level BPE),
// and how many ids it covers (ids past the last real token are padding); nullopt when the file has no
// tokenizer. `note` says what was assumed. Throws for a tokenizer kind that cannot be rebuilt.
struct GgufTokenizer {
  std::string json;
  int64_t n_valid = 0;
  std::string note;
};
std::optional<GgufTokenizer> gguf_tokenizer(const GgufFile& f);

}  // namespace mamba
