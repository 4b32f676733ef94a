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

namespace fs = std::filesystem;

namespace {
std::string reason(int err) {
  if (err == ENOSPC || err == EDQUOT) return "the disk is full";
  if (err == EFBIG) return "the file is larger than allowed (file size limit)";
  if (err == EROFS) return "the file system is read-only";
  if (err == EACCES || err == EPERM) return "permission denied (is the folder read-only?)";
  return std::strerror(err);
}
}  // namespace

AtomicFile::AtomicFile(std::string path) : m_path(std::move(path)) {
  if (m_path.empty()) throw Error("cannot write a file with an empty name");
  const fs::path target(m_path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  if (fs::is_directory(target, ec)) throw Error(m_path + ": cannot write: it is a folder");
  if (!fs::is_directory(dir, ec)) throw Error(m_path + ": cannot write: the folder " + dir.string() + " does not exist");
  // hidden, and named after the target so a leftover (after a power cut) says what it was
  std::string base = ".";  // appended piecewise: GCC 12 warns falsely (-Wrestrict) on "." + string
  base += target.filename().string();
  base += ".tmp-XXXXXX";
  const std::string tmpl = (dir / base).string();
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  m_fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (m_fd < 0) {
    const int err = errno;
    throw Error(m_path + ": cannot write: " + reason(err));
  }
  m_temp = name.data();
  // mkstemp makes 0600; a new file gets the usual mode (0666 less the umask), a replaced one keeps its own
  struct stat st {};
  mode_t mode;
  if (::stat(m_path.c_str(), &st) == 0) {
    mode = st.st_mode & 07777;
  } else {
    const mode_t mask = ::umask(0);
    ::umask(mask);
    mode = 0666 & ~mask;
  }
  ::fchmod(m_fd, mode);
}

AtomicFile::~AtomicFile() {
  if (m_fd >= 0) ::close(m_fd);
  if (!m_committed && !m_temp.empty()) ::unlink(m_temp.c_str());
}

void AtomicFile::fail(const std::string& what, int err) {
  if (m_fd >= 0) ::close(m_fd);
  m_fd = -1;
  ::unlink(m_temp.c_str());
  m_temp.clear();
  throw Error(m_path + ": " + what + ": " + reason(err) + "; the file was not changed");
}

void AtomicFile::write(const void* data, size_t bytes) {
  if (m_fd < 0) throw Error(m_path + ": write after the file was committed or abandoned");
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::write(m_fd, p, bytes);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("cannot write", errno);
    }
    if (n == 0) fail("cannot write", ENOSPC);
    p += n;
    bytes -= static_cast<size_t>(n);
  }
}

void AtomicFile::commit() {
  if (m_fd < 0) throw Error(m_path + ": commit after the file was committed or abandoned");
  if (::fsync(m_fd) != 0) fail("cannot flush to disk", errno);
  if (::close(m_fd) != 0) {
    m_fd = -1;
    fail("cannot close", errno);
  }
  m_fd = -1;
  if (::rename(m_temp.c_str(), m_path.c_str()) != 0) fail("cannot replace", errno);
  m_committed = true;
  // the rename itself reaches the disk with the folder's entry; best effort (some file systems refuse)
  const fs::path target(m_path);
  const std::string dir = target.has_parent_path() ? target.parent_path().string() : ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  AtomicFile f(path);
  f.write(bytes);
  f.commit();
}

void write_file_atomic(const std::string& path, const std::function<void(AtomicFile&)>& produce) {
  AtomicFile f(path);
  produce(f);
  f.commit();
}

}  // namespace mamba
