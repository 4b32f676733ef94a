#include "engine/input_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/error.h"

namespace mamba {

InputFile::InputFile(const std::string& path) : m_path(path) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
  m_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (m_fd < 0) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
  struct stat st {};
  if (::fstat(m_fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(m_fd);
    throw Error(path + (S_ISDIR(st.st_mode) ? ": is a folder, not a file" : ": not a regular file"));
  }
  // Reads of a regular file never block; clearing the flag keeps pread's semantics plain.
  ::fcntl(m_fd, F_SETFL, ::fcntl(m_fd, F_GETFL) & ~O_NONBLOCK);
  m_size = static_cast<uint64_t>(st.st_size);
}

InputFile::~InputFile() {
  if (m_fd >= 0) ::close(m_fd);
}

void InputFile::read(uint64_t offset, void* dst, size_t n) const {
  if (offset > m_size || n > m_size - offset)
    throw Error(m_path + ": read of " + std::to_string(n) + " bytes at offset " + std::to_string(offset) + " is past the end of the file");
  auto* out = static_cast<char*>(dst);
  while (n > 0) {
    const ssize_t got = ::pread(m_fd, out, n, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw Error(m_path + ": read error (" + std::strerror(errno) + ")");
    if (got == 0) throw Error(m_path + ": the file became shorter while it was read (truncated or being rewritten?)");
    out += got;
    offset += static_cast<uint64_t>(got);
    n -= static_cast<size_t>(got);
  }
}

std::string read_file(const std::string& path, uint64_t max_bytes) {
  const InputFile f(path);
  if (f.size() > max_bytes)
    throw Error(path + ": file is " + std::to_string(f.size()) + " bytes, more than the " + std::to_string(max_bytes) + " accepted here");
  std::string bytes(static_cast<size_t>(f.size()), '\0');
  f.read(0, bytes.data(), bytes.size());
  return bytes;
}

}  // namespace mamba
