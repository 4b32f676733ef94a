#pragma once
// The tensors of a checkpoint, whatever file format holds them, under Hugging Face names and shapes
// (backbone.layers.3.mixer.in_proj.weight, (2E, D)). Each format's reader validates its file when it is
// opened, renames and reshapes its tensors to this convention, and converts them to f32 on request.
#include <cstdint>
#include <string>
#include <vector>

namespace mamba {

struct TensorInfo {
  std::string name;            // Hugging Face naming
  std::string dtype;           // as stored: F32 | F16 | BF16 | Q8_0
  std::vector<int64_t> shape;  // Hugging Face shape (row-major, outermost first)
  uint64_t nbytes = 0;         // bytes stored in the file
  int64_t numel() const;
  std::string shape_str() const;
};

class TensorSource {
 public:
  virtual ~TensorSource() = default;
  virtual const std::string& origin() const = 0;  // the file (or index) named in error messages
  virtual std::vector<std::string> names() const = 0;
  virtual const TensorInfo* find(const std::string& name) const = 0;  // null when absent
  // Writes t.numel() floats; throws mamba::Error on a read failure. May drop the tensor's source bytes
  // from memory afterwards (each tensor is read once).
  virtual void read_f32(const TensorInfo& t, float* out) const = 0;
  virtual uint64_t file_bytes() const = 0;
  // The file that holds tensor `name` (a shard of a sharded checkpoint), for error messages.
  virtual std::string file_of(const std::string& name) const {
    (void)name;
    return origin();
  }
  virtual std::string format() const = 0;  // for the model dock, e.g. "safetensors", "GGUF v3"
};

// Conversions shared by the readers (sources may be unaligned).
float f16_to_f32(uint16_t h);
void f16_to_f32(const uint8_t* src, int64_t n, float* out);
void bf16_to_f32(const uint8_t* src, int64_t n, float* out);
// GGML Q8_0: blocks of 32 values, each an f16 scale followed by 32 int8; n must be a multiple of 32.
constexpr int64_t kQ8Block = 32, kQ8BlockBytes = 34;
void q8_0_to_f32(const uint8_t* src, int64_t n, float* out);

}  // namespace mamba
