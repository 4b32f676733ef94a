// libFuzzer target: a PyTorch pytorch_model.bin (a zip archive of data.pkl and the storages) as a stranger
// may write it; the input is the whole file. libzip reads the archive, the restricted unpickler the state
// dict, and every tensor is converted as a model load would.
#include "engine/torch_checkpoint.h"
#include "tests/fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fuzz::MemoryFile file(data, size, "fuzz.bin");
  try {
    fuzz::read_all(*mamba::open_torch_checkpoint(file.path()), size);
  } catch (const mamba::Error& e) {
    fuzz::require_named(e, file.path());
  }
  return 0;
}
