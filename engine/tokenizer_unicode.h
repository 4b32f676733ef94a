#pragma once
// Tokenizer internals: UTF-8 decoding and encoding, the lossy repair of invalid UTF-8, the Unicode
// character classes the pre-tokenizer and added-token flags need, and normalization (utf8proc).
// The public utf8_lossy / normalize_nfc are declared in tokenizer.h and defined in tokenizer_unicode.cpp.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mamba::tokenizer_detail {

// ---------------------------------------------------------------------------------------------------
// UTF-8

bool is_valid_utf8(std::string_view s);

// Appends the lossy decoding of `in` to `out`. Unless `final`, stops before a trailing sequence that is
// valid so far but unfinished, and returns how many bytes were consumed.
size_t append_lossy(std::string_view in, std::string& out, bool final);

// Decodes the code point at s[i]; `s` must be valid UTF-8.
inline char32_t decode_at(std::string_view s, size_t i, size_t& len) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + i;
  const unsigned char b0 = p[0];
  if (b0 < 0x80) {
    len = 1;
    return b0;
  }
  if (b0 < 0xE0) {
    len = 2;
    return (char32_t(b0 & 0x1F) << 6) | (p[1] & 0x3F);
  }
  if (b0 < 0xF0) {
    len = 3;
    return (char32_t(b0 & 0x0F) << 12) | (char32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
  }
  len = 4;
  return (char32_t(b0 & 0x07) << 18) | (char32_t(p[1] & 0x3F) << 12) | (char32_t(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
}

void append_utf8(std::string& out, char32_t cp);

// ---------------------------------------------------------------------------------------------------
// Unicode classes. The GPT-2 regex runs on Oniguruma, where \p{L} / \p{N} are general categories and
// \s is the White_Space property; Rust's regex \w (added-token single_word) is Alphabetic + marks +
// Nd + Pc + Join_Control. All are derived from utf8proc's general category, never from our own tables.

enum class CharClass : uint8_t { letter, number, space, other };

bool is_white_space(char32_t cp);
CharClass classify_slow(char32_t cp);  // any code point; class_at handles ASCII without utf8proc
bool is_word_char(char32_t cp);

constexpr std::array<CharClass, 128> make_ascii_classes() {
  std::array<CharClass, 128> t{};
  for (int c = 0; c < 128; ++c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) t[c] = CharClass::letter;
    else if (c >= '0' && c <= '9') t[c] = CharClass::number;
    else if (c == ' ' || (c >= 0x09 && c <= 0x0D)) t[c] = CharClass::space;
    else t[c] = CharClass::other;
  }
  return t;
}
inline constexpr std::array<CharClass, 128> kAsciiClass = make_ascii_classes();

inline CharClass class_at(std::string_view s, size_t i, size_t& len) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) {
    len = 1;
    return kAsciiClass[c];
  }
  return classify_slow(decode_at(s, i, len));
}

// ---------------------------------------------------------------------------------------------------
// Normalizers

enum class NormalForm { nfc, nfd, nfkc, nfkd };

// Applies `forms` in order to valid UTF-8; no forms returns the input unchanged.
std::string normalize(std::string_view in, const std::vector<NormalForm>& forms);

}  // namespace mamba::tokenizer_detail
