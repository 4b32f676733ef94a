#pragma once
// Shared by the fuzz targets whose readers take a path: the input as a file (an anonymous memory file,
// so nothing touches the disk), and the rule every target applies to errors.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/tensor_source.h"

namespace fuzz {

class MemoryFile {
 public:
  MemoryFile(const uint8_t* data, size_t size, const char* name) : m_fd(::memfd_create(name, 0)) {
    if (m_fd < 0 || ::write(m_fd, data, size) != static_cast<ssize_t>(size)) std::abort();
    m_path = "/proc/self/fd/" + std::to_string(m_fd);
  }
  ~MemoryFile() { ::close(m_fd); }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;
  const std::string& path() const { return m_path; }

 private:
  int m_fd;
  std::string m_path;
};

// A refusal must be a mamba::Error whose message starts with the file's name: anything else (another
// exception, a crash, a sanitizer report, a hang) is a finding.
inline void require_named(const mamba::Error& e, const std::string& origin) {
  if (std::string(e.what()).rfind(origin, 0) != 0) std::abort();
}

// Every tensor the source lists, converted to f32: the reads a model load would make. The sizes were
// validated against the file by the reader; a tensor larger than this input could hold is a finding.
inline void read_all(const mamba::TensorSource& src, size_t input_size) {
  std::vector<float> out;
  for (const std::string& name : src.names()) {
    const mamba::TensorInfo* t = src.find(name);
    if (!t) std::abort();
    const int64_t n = t->numel();
    if (n < 0 || uint64_t(n) > 8 * uint64_t(input_size) + 64) std::abort();
    out.resize(static_cast<size_t>(n));
    src.read_f32(*t, out.data());
  }
}

}  // namespace fuzz
