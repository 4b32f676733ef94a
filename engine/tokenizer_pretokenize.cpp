#include "engine/tokenizer_pretokenize.h"

namespace mamba::tokenizer_detail {

ByteAlphabet::ByteAlphabet() {
  char_to_byte.fill(-1);
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    byte_to_char[b] = printable ? char32_t(b) : char32_t(256 + extra++);
    char_to_byte[byte_to_char[b]] = int16_t(b);
    append_utf8(byte_to_utf8[b], byte_to_char[b]);
  }
}

const ByteAlphabet& alphabet() {
  static const ByteAlphabet a;
  return a;
}

std::string byte_level_encode(std::string_view raw) {
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char b : raw) out += alphabet().byte_to_utf8[b];
  return out;
}

std::string byte_level_decode_token(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  size_t i = 0;
  while (i < token.size()) {
    size_t len;
    const char32_t cp = decode_at(token, i, len);
    const int b = cp < 324 ? alphabet().char_to_byte[cp] : -1;
    if (b < 0) return std::string(token);
    out += char(b);
    i += len;
  }
  return out;
}

}  // namespace mamba::tokenizer_detail
