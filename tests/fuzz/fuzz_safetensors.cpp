// libFuzzer target: a .safetensors file as a stranger may write it; the input is the whole file. Its
// header length and tensor table are validated in memory as the loader does; a file that passes is
// then opened and read through engine/input_file.h (a memory-backed file) and every tensor converted.
// Anything but success or a mamba::Error naming the file is a finding.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/safetensors.h"

namespace {

bool names_file(const mamba::Error& e, const std::string& path) { return std::string(e.what()).rfind(path, 0) == 0; }

// The whole loader path on a file holding `data`.
void read_as_file(const uint8_t* data, size_t size) {
  const int fd = ::memfd_create("fuzz.safetensors", 0);
  if (fd < 0) std::abort();
  if (::write(fd, data, size) != static_cast<ssize_t>(size)) std::abort();
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  try {
    const mamba::SafetensorsFile f(path);
    std::vector<float> out;
    for (const auto& [name, t] : f.tensors()) {
      out.resize(static_cast<size_t>(t.numel()));
      mamba::convert_to_f32(t, out.data());
    }
  } catch (const mamba::Error& e) {
    if (!names_file(e, path)) std::abort();
  }
  ::close(fd);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  const std::string path = "fuzz.safetensors";
  try {
    const uint64_t hlen = mamba::safetensors_header_length(data, size, path);
    const mamba::SafetensorsTable table =
        mamba::parse_safetensors_header(std::string(reinterpret_cast<const char*>(data) + 8, hlen), size, path);
    uint64_t bytes = 8 + hlen;
    for (const auto& [name, t] : table.tensors) {
      if (t.offset < 8 + hlen || t.offset + t.nbytes > size) std::abort();  // inside the data section
      bytes += t.nbytes;
    }
    if (bytes != size) std::abort();  // the tensors cover the data section exactly
  } catch (const mamba::Error& e) {
    if (!names_file(e, path)) std::abort();
    return 0;
  }
  read_as_file(data, size);
  return 0;
}
