#pragma once
// Writing a file so that it is either the old file or the complete new one, never a part: the bytes go
// to a temporary file in the same folder, which is flushed to disk (fsync) and then renamed over the
// target (rename is atomic within a file system). A failure (read-only folder, full disk, file size
// limit) removes the temporary file, leaves any existing file as it was, and throws mamba::Error
// naming the file and the cause.
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace mamba {

// Streams the new content piece by piece (large files need not be held in memory twice).
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);  // creates the temporary file; throws if the folder refuses
  ~AtomicFile();                          // not committed: the temporary file is removed
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t bytes);
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
  // fsync, rename over the target, fsync the folder. Nothing may be written after.
  void commit();
  const std::string& path() const { return m_path; }

 private:
  [[noreturn]] void fail(const std::string& what, int err);
  std::string m_path, m_temp;
  int m_fd = -1;
  bool m_committed = false;
};

void write_file_atomic(const std::string& path, std::string_view bytes);
// `produce` writes the content through the AtomicFile it is given; an exception from it abandons the write.
void write_file_atomic(const std::string& path, const std::function<void(AtomicFile&)>& produce);

}  // namespace mamba
