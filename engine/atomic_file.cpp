#include "engine/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "engine/error.h"

namespace mamba {

namespace {

[[noreturn]] void fail(const std::string& path, const char* what, int err) {
  throw Error(path + ": cannot " + what + " (" + std::strerror(err) + ")");
}

// The temporary file, removed unless it was renamed into place.
struct Temp {
  std::string path;
  int fd = -1;
  bool kept = false;
  ~Temp() {
    if (fd >= 0) ::close(fd);
    if (!kept && !path.empty()) ::unlink(path.c_str());
  }
};

}  // namespace

void write_file_atomic(const std::string& path, std::string_view bytes) {
  const std::filesystem::path target(path);
  const std::filesystem::path dir = target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
  Temp tmp;
  std::string leaf = ".";  // hidden, and named after the target so a leftover explains itself
  leaf += target.filename().string();
  leaf += ".XXXXXX";
  const std::string name = (dir / leaf).string();
  std::vector<char> templ(name.begin(), name.end());
  templ.push_back('\0');
  tmp.fd = ::mkstemp(templ.data());
  if (tmp.fd < 0) fail(path, "create a file in its folder", errno);
  tmp.path = templ.data();
  // mkstemp makes the file private (0600); give it the permissions a plain create would have.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(tmp.fd, 0666 & ~mask);

  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(tmp.fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(path, "write", errno);
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(tmp.fd) != 0) fail(path, "write", errno);
  const int fd = tmp.fd;
  tmp.fd = -1;
  if (::close(fd) != 0) fail(path, "write", errno);
  if (::rename(tmp.path.c_str(), path.c_str()) != 0) fail(path, "replace", errno);
  tmp.kept = true;
  // The rename itself reaches the disk with the folder's metadata.
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace mamba
