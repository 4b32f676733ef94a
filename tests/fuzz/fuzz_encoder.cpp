// libFuzzer target: the encoder on arbitrary bytes (prompts are untrusted too), with the byte-level BPE
// tokenizer of tests/fixtures. Byte-level BPE loses nothing but invalid UTF-8 and non-NFC forms, so
// decode(encode(x)) must equal NFC(lossy(x)) (unless x spells an added token); the stream decoder must
// agree with decode.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/tokenizer.h"

namespace {
const mamba::Tokenizer& tokenizer() {
  static const mamba::Tokenizer t =
      mamba::Tokenizer::from_file(std::string(MAMBA_SOURCE_DIR) + "/tests/fixtures/tokenizer/small_tokenizer.json");
  return t;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const mamba::Tokenizer& t = tokenizer();
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  const std::vector<int32_t> ids = t.encode(bytes);
  for (int32_t id : ids)
    if (!t.has_token(id)) std::abort();
  const std::string whole = t.decode(ids);
  const std::string nfc = mamba::normalize_nfc(mamba::utf8_lossy(bytes));
  // An added token ("<|endoftext|>") formed by the input splits it, and NFC applies to the pieces.
  if (nfc.find("<|") == std::string::npos && whole != nfc) std::abort();
  mamba::StreamDecoder dec(t);
  std::string streamed;
  for (int32_t id : ids) {
    const std::string piece = dec.push(id);
    if (mamba::utf8_lossy(piece) != piece) std::abort();  // only whole characters come out
    streamed += piece;
  }
  if (streamed + dec.flush() != whole) std::abort();
  return 0;
}
