// libFuzzer target: a mamba.c model.bin (a 256-byte header, then f32 weights by kind) as a stranger may
// write it; the input is the whole file. The config from the header, then every tensor as a load reads it;
// the same bytes are also read as a mamba.c tokenizer.bin.
#include "engine/mambac.h"
#include "tests/fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fuzz::MemoryFile file(data, size, "fuzz-model.bin");
  try {
    const mamba::Config c = mamba::mambac_config(file.path());
    fuzz::read_all(*mamba::open_mambac(file.path(), c), size);
  } catch (const mamba::Error& e) {
    fuzz::require_named(e, file.path());
  }
  try {
    (void)mamba::read_mambac_tokenizer(file.path());
  } catch (const mamba::Error& e) {
    fuzz::require_named(e, file.path());
  }
  return 0;
}
