#pragma once
// Reading files that strangers made, safely: only regular files are opened (a FIFO or a device in place
// of a model file gives an error instead of blocking in open()), and every read is positional and
// checked, so a file truncated or replaced while it is read gives an Error naming it — never the SIGBUS
// a memory map raises when its file shrinks.
#include <cstddef>
#include <cstdint>
#include <string>

namespace mamba {

class InputFile {
 public:
  explicit InputFile(const std::string& path);  // throws mamba::Error "<path>: ..." unless a readable regular file
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  const std::string& path() const { return m_path; }
  uint64_t size() const { return m_size; }  // when opened
  // Exactly `n` bytes at `offset` into `dst`; throws if the file no longer holds them.
  void read(uint64_t offset, void* dst, size_t n) const;

 private:
  std::string m_path;
  int m_fd = -1;
  uint64_t m_size = 0;
};

// The whole of a regular file; throws mamba::Error naming it when it is not one, cannot be read, or is
// larger than `max_bytes`.
std::string read_file(const std::string& path, uint64_t max_bytes);

}  // namespace mamba
