// libFuzzer target: the restricted unpickler (engine/pickle.h) on one pickle, as found in data.pkl of a
// PyTorch checkpoint. It must refuse every opcode and global outside its set, and every limit, with a
// mamba::Error naming the origin — never execute, recurse without bound or allocate from a declared size.
#include <string_view>

#include "engine/pickle.h"
#include "tests/fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string origin = "fuzz/data.pkl";
  try {
    (void)mamba::pickle::load(std::string_view(reinterpret_cast<const char*>(data), size), origin);
  } catch (const mamba::Error& e) {
    fuzz::require_named(e, origin);
  }
  return 0;
}
