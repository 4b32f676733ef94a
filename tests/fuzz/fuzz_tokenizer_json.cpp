// libFuzzer target: tokenizer.json. A tokenizer that loads must encode and decode without failing, its
// ids in range, the streaming decoder agreeing with decode; anything but success or a mamba::Error
// naming the file is a finding.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<mamba::Tokenizer> tok;
  try {
    tok.push_back(mamba::Tokenizer::from_json_text(text, "fuzz/tokenizer.json"));
  } catch (const mamba::Error& e) {
    if (std::string(e.what()).rfind("fuzz/tokenizer.json", 0) != 0) std::abort();
    return 0;
  }
  const mamba::Tokenizer& t = tok.front();
  // The input's own tail doubles as text, so the fuzzer steers the encoder too.
  for (const std::string& s :
       {std::string("Hello world, it's 2024!\n\t  \xC3\xA9\xE2\x80\x8B<|endoftext|>"), text.substr(text.size() / 2, 64)}) {
    const std::vector<int32_t> ids = t.encode(s);
    for (int32_t id : ids)
      if (id < 0 || id >= t.vocab_size()) std::abort();
    const std::string whole = t.decode(ids);
    mamba::StreamDecoder dec(t);
    std::string streamed;
    for (int32_t id : ids) streamed += dec.push(id);
    if (streamed + dec.flush() != whole) std::abort();
  }
  const std::vector<int32_t> odd = {-1, 0, t.vocab_size() - 1, t.vocab_size(), 1 << 30};
  (void)t.decode(odd, true);
  (void)t.decode(odd, false);
  return 0;
}
