#include "engine/tokenizer_unicode.h"

#include <utf8proc.h>

#include <cstdlib>
#include <cstring>
#include <memory>

#include "engine/error.h"
#include "engine/tokenizer.h"

namespace mamba {
namespace tokenizer_detail {
namespace {

constexpr std::string_view kReplacementUtf8 = "\xEF\xBF\xBD";

enum class Utf8Kind { ok, invalid, incomplete };
struct Utf8Step {
  Utf8Kind kind;
  size_t len;  // ok: sequence length; invalid: bytes of the maximal invalid subpart; incomplete: bytes seen
};

// One step of Rust's UTF-8 validation (the rules String::from_utf8_lossy uses to place U+FFFD).
Utf8Step utf8_step(const unsigned char* p, size_t n) {
  const unsigned char b0 = p[0];
  if (b0 < 0x80) return {Utf8Kind::ok, 1};
  size_t width;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    width = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    width = 3;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    width = 4;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return {Utf8Kind::invalid, 1};
  }
  for (size_t k = 1; k < width; ++k) {
    if (k >= n) return {Utf8Kind::incomplete, k};
    const unsigned char b = p[k];
    const bool in_range = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!in_range) return {Utf8Kind::invalid, k};
  }
  return {Utf8Kind::ok, width};
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    // Skip ASCII eight bytes at a time: most text is mostly ASCII.
    while (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    const Utf8Step st = utf8_step(p + i, n - i);
    if (st.kind != Utf8Kind::ok) return false;
    i += st.len;
  }
  return true;
}

size_t append_lossy(std::string_view in, std::string& out, bool final) {
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  const size_t n = in.size();
  size_t i = 0, run = 0;  // [run, i) is valid text not yet copied
  while (i < n) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    const Utf8Step st = utf8_step(p + i, n - i);
    if (st.kind == Utf8Kind::ok) {
      i += st.len;
      continue;
    }
    out.append(in.data() + run, i - run);
    if (st.kind == Utf8Kind::incomplete && !final) return i;
    out += kReplacementUtf8;
    i += st.len;
    run = i;
  }
  out.append(in.data() + run, n - run);
  return n;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

// ---------------------------------------------------------------------------------------------------
// Unicode classes

bool is_white_space(char32_t cp) {
  // White_Space = the Z* separators plus the C0/C1 controls TAB..CR and NEL.
  if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x85) return true;
  const auto cat = utf8proc_category(utf8proc_int32_t(cp));
  return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

namespace {

// General category L (Lu, Ll, Lt, Lm, Lo): \p{L}.
bool is_letter_category(utf8proc_category_t cat) {
  switch (cat) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: return true;
    default: return false;
  }
}

}  // namespace

CharClass classify_slow(char32_t cp) {
  const utf8proc_category_t cat = utf8proc_category(utf8proc_int32_t(cp));
  if (is_letter_category(cat)) return CharClass::letter;
  switch (cat) {
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO: return CharClass::number;
    default: return is_white_space(cp) ? CharClass::space : CharClass::other;
  }
}

bool is_word_char(char32_t cp) {
  if (cp < 0x80) return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9') || cp == '_';
  if (cp == 0x200C || cp == 0x200D) return true;  // Join_Control
  // utf8proc has no Alphabetic property. Letters, Nl and marks cover it except for these symbols
  // (circled / squared Latin letters, Other_Alphabetic); checked against HF for every code point.
  if ((cp >= 0x24B6 && cp <= 0x24E9) || (cp >= 0x1F130 && cp <= 0x1F149) || (cp >= 0x1F150 && cp <= 0x1F169) ||
      (cp >= 0x1F170 && cp <= 0x1F189))
    return true;
  const utf8proc_category_t cat = utf8proc_category(utf8proc_int32_t(cp));
  if (is_letter_category(cat)) return true;
  switch (cat) {
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_PC: return true;
    default: return false;
  }
}

// ---------------------------------------------------------------------------------------------------
// Normalizers

namespace {

utf8proc_option_t utf8proc_options(NormalForm f) {
  int o = UTF8PROC_STABLE;
  switch (f) {
    case NormalForm::nfc: o |= UTF8PROC_COMPOSE; break;
    case NormalForm::nfd: o |= UTF8PROC_DECOMPOSE; break;
    case NormalForm::nfkc: o |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    case NormalForm::nfkd: o |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
  }
  return utf8proc_option_t(o);
}

void utf8proc_normalize_append(std::string_view in, NormalForm form, std::string& out) {
  utf8proc_uint8_t* mapped = nullptr;
  const utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(in.data()), utf8proc_ssize_t(in.size()), &mapped, utf8proc_options(form));
  const std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owner(mapped, &std::free);
  if (n < 0) throw Error(std::string("Unicode normalization failed: ") + utf8proc_errmsg(n));
  out.append(reinterpret_cast<const char*>(mapped), size_t(n));
}

// Normalizes valid UTF-8. An ASCII character is a normalization boundary in every form (it never
// combines with what precedes it), so only the non-ASCII runs, together with the ASCII character in
// front of each (which may take a combining mark), go through utf8proc.
void normalize_append(std::string_view in, NormalForm form, std::string& out) {
  const size_t n = in.size();
  size_t copied = 0, i = 0;
  while (i < n) {
    if (static_cast<unsigned char>(in[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t start = i > copied ? i - 1 : i;  // the ASCII character in front, if not yet used
    size_t end = i;
    while (end < n && static_cast<unsigned char>(in[end]) >= 0x80) ++end;
    out.append(in.data() + copied, start - copied);
    utf8proc_normalize_append(in.substr(start, end - start), form, out);
    copied = i = end;
  }
  out.append(in.data() + copied, n - copied);
}

}  // namespace

std::string normalize(std::string_view in, const std::vector<NormalForm>& forms) {
  if (forms.empty()) return std::string(in);
  std::string cur;
  cur.reserve(in.size() + in.size() / 8);
  normalize_append(in, forms[0], cur);
  for (size_t k = 1; k < forms.size(); ++k) {
    std::string next;
    next.reserve(cur.size() + cur.size() / 8);
    normalize_append(cur, forms[k], next);
    cur.swap(next);
  }
  return cur;
}

}  // namespace tokenizer_detail

// ---------------------------------------------------------------------------------------------------
// Public helpers declared in tokenizer.h

std::string utf8_lossy(std::string_view bytes) {
  if (tokenizer_detail::is_valid_utf8(bytes)) return std::string(bytes);
  std::string out;
  out.reserve(bytes.size() + 8);
  tokenizer_detail::append_lossy(bytes, out, /*final=*/true);
  return out;
}

std::string normalize_nfc(std::string_view text) { return tokenizer_detail::normalize(text, {tokenizer_detail::NormalForm::nfc}); }

}  // namespace mamba
