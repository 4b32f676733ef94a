// libFuzzer target: a GGUF file (llama.cpp's format) as a stranger may write it; the input is the whole
// file. The header, metadata and tensor table are parsed; a file that passes goes on as a model load does:
// the config from the metadata, every tensor dequantised, the tokenizer rebuilt from the metadata.
#include "engine/gguf.h"
#include "tests/fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fuzz::MemoryFile file(data, size, "fuzz.gguf");
  try {
    auto f = std::make_shared<const mamba::GgufFile>(file.path());
    try {
      (void)mamba::gguf_tokenizer(*f);
    } catch (const mamba::Error& e) {
      fuzz::require_named(e, file.path());
    }
    const mamba::Config c = mamba::gguf_config(*f);
    fuzz::read_all(*mamba::open_gguf_tensors(f, c), size);
  } catch (const mamba::Error& e) {
    fuzz::require_named(e, file.path());
  }
  return 0;
}
