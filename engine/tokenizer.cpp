#include "tokenizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "error.h"

// Layout of this file, in pipeline order:
//   UTF-8 helpers · Unicode classes (utf8proc) · byte-level alphabet · GPT-2 pre-tokenizer scanner ·
//   normalizers · added-token matcher · BPE model · word cache · Tokenizer::Impl (encode/decode) ·
//   tokenizer.json loader · public API.
// Every behaviour copies HF `tokenizers` (Rust), including its quirks, because the models were trained
// on its ids; comments point out where HF's behaviour is surprising.

namespace mamba {
namespace {

using json = nlohmann::json;

constexpr std::string_view kReplacementUtf8 = "\xEF\xBF\xBD";
// Largest accepted id + 1. Real vocabularies stay below 300k; the bound keeps a corrupt file from
// making us allocate gigabytes for the id tables.
constexpr int64_t kMaxTokenId = int64_t{1} << 22;
constexpr std::string_view kGpt2SplitRegex =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

// ---------------------------------------------------------------------------------------------------
// UTF-8

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

// Appends the lossy decoding of `in` to `out`. Unless `final`, stops before a trailing sequence that is
// valid so far but unfinished, and returns how many bytes were consumed.
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
  return (char32_t(b0 & 0x07) << 18) | (char32_t(p[1] & 0x3F) << 12) | (char32_t(p[2] & 0x3F) << 6) |
         (p[3] & 0x3F);
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
// Unicode classes. The GPT-2 regex runs on Oniguruma, where \p{L} / \p{N} are general categories and
// \s is the White_Space property; Rust's regex \w (added-token single_word) is Alphabetic + marks +
// Nd + Pc + Join_Control. All are derived from utf8proc's general category, never from our own tables.

enum class CharClass : uint8_t { letter, number, space, other };

bool is_white_space(char32_t cp) {
  // White_Space = the Z* separators plus the C0/C1 controls TAB..CR and NEL.
  if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x85) return true;
  const auto cat = utf8proc_category(utf8proc_int32_t(cp));
  return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

CharClass classify_slow(char32_t cp) {
  switch (utf8proc_category(utf8proc_int32_t(cp))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
      return CharClass::letter;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      return CharClass::number;
    default:
      return is_white_space(cp) ? CharClass::space : CharClass::other;
  }
}

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
constexpr std::array<CharClass, 128> kAsciiClass = make_ascii_classes();

inline CharClass class_at(std::string_view s, size_t i, size_t& len) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) {
    len = 1;
    return kAsciiClass[c];
  }
  return classify_slow(decode_at(s, i, len));
}

bool is_word_char(char32_t cp) {
  if (cp < 0x80) return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9') || cp == '_';
  if (cp == 0x200C || cp == 0x200D) return true;  // Join_Control
  // utf8proc has no Alphabetic property. Letters, Nl and marks cover it except for these symbols
  // (circled / squared Latin letters, Other_Alphabetic); checked against HF for every code point.
  if ((cp >= 0x24B6 && cp <= 0x24E9) || (cp >= 0x1F130 && cp <= 0x1F149) || (cp >= 0x1F150 && cp <= 0x1F169) ||
      (cp >= 0x1F170 && cp <= 0x1F189))
    return true;
  switch (utf8proc_category(utf8proc_int32_t(cp))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return false;
  }
}

// ---------------------------------------------------------------------------------------------------
// GPT-2's byte-level alphabet: every byte becomes a printable character so that BPE never sees
// whitespace or control characters (byte 0x20 becomes 'Ġ' U+0120).

struct ByteAlphabet {
  std::array<char32_t, 256> byte_to_char{};
  std::array<int16_t, 324> char_to_byte{};  // the alphabet's code points are all below 324
  std::array<std::string, 256> byte_to_utf8;

  ByteAlphabet() {
    char_to_byte.fill(-1);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      byte_to_char[b] = printable ? char32_t(b) : char32_t(256 + extra++);
      char_to_byte[byte_to_char[b]] = int16_t(b);
      append_utf8(byte_to_utf8[b], byte_to_char[b]);
    }
  }
};

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

// HF's ByteLevel decoder, one token at a time: a token made only of alphabet characters becomes the
// bytes they stand for; any other token (e.g. an added "<|endoftext|>" or a run of real spaces) is
// passed through as its own UTF-8.
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

// ---------------------------------------------------------------------------------------------------
// The GPT-2 pre-tokenizer regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// as a scanner with the regex's leftmost-first alternation and backtracking semantics. Every
// character is in exactly one of letter / number / space / other, so the matches tile the input.

template <class Emit>
void gpt2_split(std::string_view s, Emit&& emit) {
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const char c = s[i];
    if (c == '\'' && i + 1 < n) {
      const char d = s[i + 1];
      size_t m = 0;
      if (d == 's' || d == 't' || d == 'm' || d == 'd') {
        m = 2;
      } else if (i + 2 < n) {
        const char e = s[i + 2];
        if ((d == 'r' && e == 'e') || (d == 'v' && e == 'e') || (d == 'l' && e == 'l')) m = 3;
      }
      if (m != 0) {
        emit(s.substr(i, m));
        i += m;
        continue;
      }
    }
    size_t len;
    CharClass k = class_at(s, i, len);
    size_t run_start = i;
    if (c == ' ' && i + 1 < n) {
      // " ?X+": a single ASCII space joins the run of letters / digits / symbols after it.
      size_t len2;
      const CharClass k2 = class_at(s, i + 1, len2);
      if (k2 != CharClass::space) {
        k = k2;
        len = len2;
        run_start = i + 1;
      }
    }
    if (k != CharClass::space) {
      size_t e = run_start + len;
      while (e < n) {
        size_t l;
        if (class_at(s, e, l) != k) break;
        e += l;
      }
      emit(s.substr(i, e - i));
      i = e;
      continue;
    }
    // "\s+(?!\S)": a whitespace run followed by a non-space gives its last character back, so that
    // it can prefix the next word; a single whitespace character before a word falls to "\s+".
    size_t e = i + len, last = i;
    while (e < n) {
      size_t l;
      if (class_at(s, e, l) != CharClass::space) break;
      last = e;
      e += l;
    }
    if (e < n && last > i) e = last;
    emit(s.substr(i, e - i));
    i = e;
  }
}

// ---------------------------------------------------------------------------------------------------
// Normalizers

enum class NormalForm { nfc, nfd, nfkc, nfkd };

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
  const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(in.data()),
                                          utf8proc_ssize_t(in.size()), &mapped, utf8proc_options(form));
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

// ---------------------------------------------------------------------------------------------------
// Added tokens

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool normalized = true;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
};

// A byte trie answering "longest pattern starting here", which with a left-to-right scan gives the
// leftmost-longest, non-overlapping matches of HF's Aho-Corasick (MatchKind::LeftmostLongest).
class TokenTrie {
 public:
  TokenTrie() { root_.fill(-1); }

  // For identical patterns the first one added wins, as in Aho-Corasick.
  void add(std::string_view pattern, int32_t value) {
    if (pattern.empty()) return;
    const auto b0 = static_cast<unsigned char>(pattern[0]);
    if (root_[b0] < 0) {
      root_[b0] = int32_t(nodes_.size());
      nodes_.emplace_back();
    }
    int32_t node = root_[b0];
    for (size_t k = 1; k < pattern.size(); ++k) {
      const auto b = static_cast<unsigned char>(pattern[k]);
      int32_t child = find_child(node, b);
      if (child < 0) {
        child = int32_t(nodes_.size());
        nodes_[size_t(node)].next.emplace_back(b, child);
        nodes_.emplace_back();
      }
      node = child;
    }
    if (nodes_[size_t(node)].value < 0) nodes_[size_t(node)].value = value;
  }

  bool empty() const { return nodes_.empty(); }

  // Returns the length of the longest pattern at s[pos] (0 if none) and stores its value.
  size_t longest_at(std::string_view s, size_t pos, int32_t& value) const {
    int32_t node = root_[static_cast<unsigned char>(s[pos])];
    size_t best = 0;
    for (size_t k = pos + 1; node >= 0; ++k) {
      if (nodes_[size_t(node)].value >= 0) {
        best = k - pos;
        value = nodes_[size_t(node)].value;
      }
      if (k >= s.size()) break;
      node = find_child(node, static_cast<unsigned char>(s[k]));
    }
    return best;
  }

  bool may_start(unsigned char b) const { return root_[b] >= 0; }

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> next;
    int32_t value = -1;
  };
  int32_t find_child(int32_t node, unsigned char b) const {
    for (const auto& [byte, child] : nodes_[size_t(node)].next)
      if (byte == b) return child;
    return -1;
  }
  std::array<int32_t, 256> root_;
  std::vector<Node> nodes_;
};

// Rust regex `\s*$` / `^\s*` / `\w$` / `^\w`, used by the lstrip / rstrip / single_word flags.
size_t whitespace_start_at_end(std::string_view s) {
  size_t start = s.size();
  while (start > 0) {
    size_t k = start - 1;
    while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
    size_t len;
    if (!is_white_space(decode_at(s, k, len))) break;
    start = k;
  }
  return start;
}

size_t whitespace_end_at_start(std::string_view s) {
  size_t end = 0;
  while (end < s.size()) {
    size_t len;
    if (!is_white_space(decode_at(s, end, len))) break;
    end += len;
  }
  return end;
}

bool ends_with_word(std::string_view s) {
  if (s.empty()) return false;
  size_t k = s.size() - 1;
  while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
  size_t len;
  return is_word_char(decode_at(s, k, len));
}

bool starts_with_word(std::string_view s) {
  if (s.empty()) return false;
  size_t len;
  return is_word_char(decode_at(s, 0, len));
}

// ---------------------------------------------------------------------------------------------------
// BPE merges: (left id, right id) -> (rank, merged id), open addressing.

class MergeTable {
 public:
  struct Entry {
    uint64_t key;
    int32_t rank;
    int32_t new_id;
  };

  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    slots_.assign(cap, Entry{kEmpty, 0, 0});
    mask_ = cap - 1;
  }

  // A pair listed twice keeps its last rank: HF collects the merges into a HashMap.
  void insert(int32_t a, int32_t b, int32_t rank, int32_t new_id) {
    const uint64_t key = make_key(a, b);
    for (size_t i = hash(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == kEmpty || slots_[i].key == key) {
        slots_[i] = Entry{key, rank, new_id};
        return;
      }
    }
  }

  const Entry* find(int32_t a, int32_t b) const {
    const uint64_t key = make_key(a, b);
    for (size_t i = hash(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return &slots_[i];
      if (slots_[i].key == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t make_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  size_t hash(uint64_t key) const { return size_t((key * 0x9E3779B97F4A7C15ull) >> 32) & mask_; }
  std::vector<Entry> slots_{16, Entry{kEmpty, 0, 0}};
  size_t mask_ = 15;
};

struct BpeModel {
  std::unordered_map<std::string, int32_t> vocab;  // token strings as written in the file
  MergeTable merges;
  std::string prefix;  // continuing_subword_prefix
  std::string suffix;  // end_of_word_suffix
  bool ignore_merges = false;
  bool byte_fallback = false;
  bool fuse_unk = false;
  int32_t unk_id = -1;
  // Id of the symbol for a byte, -1 if absent; index (is_continuation | is_last << 1), because a
  // continuing-subword prefix or end-of-word suffix changes the symbol.
  std::array<std::array<int32_t, 256>, 4> byte_ids{};
  std::array<int32_t, 256> fallback_ids{};  // "<0xAB>" tokens for byte_fallback

  std::optional<int32_t> lookup(const std::string& s) const {
    const auto it = vocab.find(s);
    if (it == vocab.end()) return std::nullopt;
    return it->second;
  }

  void build_byte_tables() {
    for (int kind = 0; kind < 4; ++kind) {
      for (int b = 0; b < 256; ++b) {
        std::string s = alphabet().byte_to_utf8[b];
        if (kind & 1) s = prefix + s;
        if (kind & 2) s += suffix;
        byte_ids[kind][b] = lookup(s).value_or(-1);
      }
    }
    for (int b = 0; b < 256; ++b) {
      char code[8];
      std::snprintf(code, sizeof code, "<0x%02X>", b);
      fallback_ids[b] = lookup(code).value_or(-1);
    }
  }

  // The initial symbols of a word (raw bytes), following HF's BPE::merge_word: a character missing
  // from the vocab becomes byte-fallback tokens of its (byte-level) UTF-8, else the unk token (fused if
  // asked), else it is dropped.
  void initial_symbols(std::string_view word, std::vector<int32_t>& syms) const {
    syms.clear();
    int32_t pending_unk = -1;
    const size_t n = word.size();
    for (size_t i = 0; i < n; ++i) {
      const auto b = static_cast<unsigned char>(word[i]);
      const int kind = (i > 0 ? 1 : 0) | (i + 1 == n ? 2 : 0);
      const int32_t id = byte_ids[size_t(kind)][b];
      if (id >= 0) {
        if (pending_unk >= 0) syms.push_back(pending_unk);
        pending_unk = -1;
        syms.push_back(id);
        continue;
      }
      if (byte_fallback) {
        std::string s = alphabet().byte_to_utf8[b];
        if (kind & 1) s = prefix + s;
        if (kind & 2) s += suffix;
        const bool all = std::all_of(s.begin(), s.end(),
                                     [&](char c) { return fallback_ids[static_cast<unsigned char>(c)] >= 0; });
        if (all) {
          // Like HF, an unk still pending stays pending and lands after these.
          for (char c : s) syms.push_back(fallback_ids[static_cast<unsigned char>(c)]);
          continue;
        }
      }
      if (unk_id >= 0) {
        if (pending_unk >= 0 && !fuse_unk) syms.push_back(pending_unk);
        pending_unk = unk_id;
      }
    }
    if (pending_unk >= 0) syms.push_back(pending_unk);
  }

  // Repeatedly merges the lowest-ranked adjacent pair, leftmost first: exactly the order HF's
  // heap-based Word::merge_all produces.
  void merge(std::vector<int32_t>& syms) const {
    if (syms.size() < 2) return;
    if (syms.size() <= kSmallWord) {
      merge_small(syms);
    } else {
      merge_large(syms);
    }
  }

  static constexpr size_t kSmallWord = 96;

  // O(n^2) but allocation-free and cache friendly for ordinary words.
  void merge_small(std::vector<int32_t>& syms) const {
    std::array<int32_t, kSmallWord> rank, new_id;
    size_t m = syms.size();
    int32_t* s = syms.data();
    auto set_pair = [&](size_t i) {
      const MergeTable::Entry* e = merges.find(s[i], s[i + 1]);
      rank[i] = e ? e->rank : INT32_MAX;
      new_id[i] = e ? e->new_id : -1;
    };
    for (size_t i = 0; i + 1 < m; ++i) set_pair(i);
    while (m > 1) {
      size_t best = 0;
      for (size_t i = 1; i + 1 < m; ++i)
        if (rank[i] < rank[best]) best = i;
      if (rank[best] == INT32_MAX) break;
      s[best] = new_id[best];
      for (size_t i = best + 1; i + 1 < m; ++i) s[i] = s[i + 1];
      for (size_t i = best; i + 2 < m; ++i) {
        rank[i] = rank[i + 1];
        new_id[i] = new_id[i + 1];
      }
      --m;
      if (best > 0) set_pair(best - 1);
      if (best + 1 < m) set_pair(best);
    }
    syms.resize(m);
  }

  // O(n log n) for pathological words (a megabyte without a space): HF's algorithm, a min-heap of
  // candidate merges over a linked list of symbols, with stale entries skipped.
  void merge_large(std::vector<int32_t>& syms) const {
    struct Sym {
      int32_t id, prev, next;
    };
    struct Cand {
      int32_t rank, pos, new_id;
      bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    const int32_t m = int32_t(syms.size());
    std::vector<Sym> list(static_cast<size_t>(m));
    std::vector<bool> alive(static_cast<size_t>(m), true);
    std::vector<Cand> heap;
    heap.reserve(size_t(m));
    for (int32_t i = 0; i < m; ++i) list[size_t(i)] = Sym{syms[size_t(i)], i - 1, i + 1 < m ? i + 1 : -1};
    auto push_pair = [&](int32_t pos) {
      const Sym& a = list[size_t(pos)];
      if (a.next < 0) return;
      if (const MergeTable::Entry* e = merges.find(a.id, list[size_t(a.next)].id)) {
        heap.push_back(Cand{e->rank, pos, e->new_id});
        std::push_heap(heap.begin(), heap.end(), std::greater<>());
      }
    };
    for (int32_t i = 0; i + 1 < m; ++i) push_pair(i);
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), std::greater<>());
      const Cand top = heap.back();
      heap.pop_back();
      Sym& cur = list[size_t(top.pos)];
      if (!alive[size_t(top.pos)] || cur.next < 0) continue;
      const Sym right = list[size_t(cur.next)];
      const MergeTable::Entry* e = merges.find(cur.id, right.id);
      if (e == nullptr || e->new_id != top.new_id) continue;  // stale: the pair has changed since
      alive[size_t(cur.next)] = false;
      cur.id = top.new_id;
      cur.next = right.next;
      if (right.next >= 0) list[size_t(right.next)].prev = top.pos;
      if (cur.prev >= 0) push_pair(cur.prev);
      push_pair(top.pos);
    }
    syms.clear();
    for (int32_t i = 0; i >= 0 && i < m; i = list[size_t(i)].next) syms.push_back(list[size_t(i)].id);
  }

  // Tokenizes one pre-token given as raw bytes (before the byte-level mapping).
  void encode_word(std::string_view word, std::vector<int32_t>& out, std::vector<int32_t>& scratch) const {
    if (ignore_merges) {
      if (const auto id = lookup(byte_level_encode(word))) {
        out.push_back(*id);
        return;
      }
    }
    initial_symbols(word, scratch);
    merge(scratch);
    out.insert(out.end(), scratch.begin(), scratch.end());
  }
};

// ---------------------------------------------------------------------------------------------------
// Word cache: most words of a text repeat, and a lookup is far cheaper than merging. Sharded so that
// concurrent encoders rarely wait on each other; a full shard is simply emptied.

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

class WordCache {
 public:
  static constexpr size_t kMaxWordBytes = 64;

  bool get(std::string_view word, size_t hash, std::vector<int32_t>& out) const {
    Shard& sh = shards_[hash % kShards];
    const std::lock_guard lock(sh.mutex);
    const auto it = sh.map.find(word);
    if (it == sh.map.end()) return false;
    out.insert(out.end(), it->second.begin(), it->second.end());
    return true;
  }

  void put(std::string_view word, size_t hash, const int32_t* ids, size_t n) const {
    Shard& sh = shards_[hash % kShards];
    const std::lock_guard lock(sh.mutex);
    if (sh.map.size() >= kMaxPerShard) sh.map.clear();
    sh.map.emplace(std::string(word), std::vector<int32_t>(ids, ids + n));
  }

 private:
  static constexpr size_t kShards = 16;
  static constexpr size_t kMaxPerShard = 4096;
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> map;
  };
  mutable std::array<Shard, kShards> shards_;
};

// ---------------------------------------------------------------------------------------------------
// Pre-tokenizer pipeline: Split(GPT-2 regex) steps, then one ByteLevel step.

struct PreStep {
  enum Kind { split_gpt2, byte_level } kind = byte_level;
  bool add_prefix_space = false;
  bool use_regex = true;
};

}  // namespace

// ---------------------------------------------------------------------------------------------------

struct Tokenizer::Impl {
  std::string origin;
  BpeModel bpe;
  std::vector<NormalForm> normalizers;
  std::vector<PreStep> pre_steps;
  std::vector<AddedToken> added;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> added_ids;  // content -> id
  TokenTrie raw_trie;         // added tokens with normalized=false, matched on the input text
  TokenTrie normalized_trie;  // normalized=true ones, matched (in normalized form) on normalized text

  // Per id: offsets into the blobs, and flags.
  std::string decoded_blob, raw_blob;
  std::vector<uint32_t> decoded_offset, raw_offset;  // size vocab_size + 1
  std::vector<uint8_t> flags;
  static constexpr uint8_t kHas = 1, kSpecial = 2;

  WordCache cache;

  int32_t vocab_size() const { return int32_t(flags.size()); }
  bool has(int32_t id) const { return id >= 0 && id < vocab_size() && (flags[size_t(id)] & kHas); }
  bool special(int32_t id) const { return has(id) && (flags[size_t(id)] & kSpecial); }
  std::string_view decoded(int32_t id) const {
    if (!has(id)) return {};
    return std::string_view(decoded_blob).substr(decoded_offset[size_t(id)],
                                                 decoded_offset[size_t(id) + 1] - decoded_offset[size_t(id)]);
  }
  std::string_view raw(int32_t id) const {
    if (!has(id)) return {};
    return std::string_view(raw_blob).substr(raw_offset[size_t(id)], raw_offset[size_t(id) + 1] - raw_offset[size_t(id)]);
  }

  // HF AddedVocabulary::find_matches: the pieces of `s` between added tokens (id -1) and the tokens.
  // Kept line for line, quirks included: lstrip / rstrip swallow whitespace into the token, and the
  // search resumes at the end of the match itself, not after what rstrip swallowed.
  template <class Emit>
  void split_added(std::string_view s, const TokenTrie& trie, Emit&& emit) const {
    if (s.empty()) return;
    if (trie.empty()) {
      emit(s, -1);
      return;
    }
    size_t start_offset = 0, pos = 0;
    const size_t n = s.size();
    while (pos < n) {
      if (!trie.may_start(static_cast<unsigned char>(s[pos]))) {
        ++pos;
        continue;
      }
      int32_t index = -1;
      const size_t len = trie.longest_at(s, pos, index);
      if (len == 0) {
        ++pos;
        continue;
      }
      size_t start = pos, stop = pos + len;
      pos = stop;
      const AddedToken& tok = added[size_t(index)];
      if (tok.single_word) {
        const bool start_space = start == 0 || !ends_with_word(s.substr(0, start));
        const bool stop_space = stop == n || !starts_with_word(s.substr(stop));
        if (!start_space || !stop_space) continue;
      }
      if (tok.lstrip) start = std::max(whitespace_start_at_end(s.substr(0, start)), start_offset);
      if (tok.rstrip) stop += whitespace_end_at_start(s.substr(stop));
      if (start_offset < start) emit(s.substr(start_offset, start - start_offset), -1);
      emit(std::string_view{}, tok.id);
      start_offset = stop;
    }
    if (start_offset < n) emit(s.substr(start_offset), -1);
  }

  template <class Emit>
  void pre_tokenize(std::string_view piece, size_t step, Emit&& emit) const {
    if (step == pre_steps.size()) {
      emit(piece);
      return;
    }
    const PreStep& st = pre_steps[step];
    auto next = [&](std::string_view w) {
      if (!w.empty()) pre_tokenize(w, step + 1, emit);
    };
    if (st.kind == PreStep::split_gpt2) {
      gpt2_split(piece, next);
      return;
    }
    std::string prefixed;
    if (st.add_prefix_space && piece[0] != ' ') {
      prefixed.reserve(piece.size() + 1);
      prefixed += ' ';
      prefixed += piece;
      piece = prefixed;
    }
    if (st.use_regex) {
      gpt2_split(piece, next);
    } else {
      next(piece);
    }
  }

  void encode_word(std::string_view word, std::vector<int32_t>& out, std::vector<int32_t>& scratch) const {
    // A lone byte needs no merging (and is the commonest word: spaces, punctuation).
    if (word.size() == 1 && !bpe.ignore_merges) {
      const int32_t id = bpe.byte_ids[2][static_cast<unsigned char>(word[0])];
      if (id >= 0) {
        out.push_back(id);
        return;
      }
    }
    if (word.size() > WordCache::kMaxWordBytes) {
      bpe.encode_word(word, out, scratch);
      return;
    }
    const size_t hash = StringHash{}(word);
    if (cache.get(word, hash, out)) return;
    const size_t before = out.size();
    bpe.encode_word(word, out, scratch);
    cache.put(word, hash, out.data() + before, out.size() - before);
  }

  void encode_into(std::string_view text, std::vector<int32_t>& out) const {
    std::vector<int32_t> scratch;
    split_added(text, raw_trie, [&](std::string_view piece, int32_t id) {
      if (id >= 0) {
        out.push_back(id);
        return;
      }
      // HF normalizes each piece between non-normalized added tokens on its own.
      std::string storage;
      std::string_view norm = piece;
      if (!normalizers.empty()) {
        storage = normalize(piece, normalizers);
        norm = storage;
      }
      split_added(norm, normalized_trie, [&](std::string_view sub, int32_t sub_id) {
        if (sub_id >= 0) {
          out.push_back(sub_id);
          return;
        }
        pre_tokenize(sub, 0, [&](std::string_view word) { encode_word(word, out, scratch); });
      });
    });
  }
};

namespace {

// ---------------------------------------------------------------------------------------------------
// tokenizer.json loader

class Loader {
 public:
  explicit Loader(std::string origin) : origin_(std::move(origin)) {}

  std::shared_ptr<Tokenizer::Impl> load(const std::string& text) {
    json root;
    try {
      root = json::parse(text);
    } catch (const json::exception& e) {
      fail(std::string("not valid JSON (") + e.what() + ")");
    }
    try {
      return load_root(root);
    } catch (const json::exception& e) {
      // Only reachable through a check forgotten below; still name the file.
      fail(std::string("unexpected JSON structure (") + e.what() + ")");
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw Error(origin_ + ": " + what); }

  static std::string quote(std::string_view s) {
    std::string q = json(std::string(s)).dump(-1, ' ', true, json::error_handler_t::replace);
    if (q.size() > 80) q = q.substr(0, 77) + "...";
    return q;
  }

  static std::string type_of(const json& node) {
    if (!node.is_object()) return {};
    const auto it = node.find("type");
    return it != node.end() && it->is_string() ? it->get<std::string>() : std::string();
  }

  bool get_bool(const json& obj, const char* key, bool fallback, const std::string& where) const {
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) fail(where + "." + key + " must be true or false");
    return it->get<bool>();
  }

  std::optional<std::string> get_string(const json& obj, const char* key, const std::string& where) const {
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return std::nullopt;
    if (!it->is_string()) fail(where + "." + key + " must be a string");
    return it->get<std::string>();
  }

  int32_t get_id(const json& v, const std::string& what) const {
    if (!v.is_number_integer()) fail(what + ": id must be an integer, got " + v.dump());
    const bool negative = v.is_number_unsigned() ? false : v.get<int64_t>() < 0;
    if (negative || v.get<uint64_t>() >= uint64_t(kMaxTokenId))
      fail(what + ": id " + v.dump() + " is out of range [0, " + std::to_string(kMaxTokenId) + ")");
    return int32_t(v.get<int64_t>());
  }

  std::shared_ptr<Tokenizer::Impl> load_root(const json& root) {
    if (!root.is_object()) fail("not a tokenizer.json: the top level is not a JSON object");
    auto impl = std::make_shared<Tokenizer::Impl>();
    impl->origin = origin_;
    const auto model = root.find("model");
    if (model == root.end() || model->is_null()) fail("missing \"model\"");
    if (!model->is_object()) fail("\"model\" must be an object");
    load_normalizer(root.contains("normalizer") ? root["normalizer"] : json(), impl->normalizers);
    load_pre_tokenizer(root.contains("pre_tokenizer") ? root["pre_tokenizer"] : json(), impl->pre_steps);
    check_decoder(root.contains("decoder") ? root["decoder"] : json());
    load_model(*model, impl->bpe);
    load_added_tokens(root.contains("added_tokens") ? root["added_tokens"] : json(), *impl);
    build_id_tables(*impl);
    return impl;
  }

  // Sequences nest; a bound keeps a hostile file from exhausting the stack.
  static constexpr int kMaxNesting = 8;

  void load_normalizer(const json& node, std::vector<NormalForm>& out, int depth = 0) const {
    if (node.is_null()) return;
    const std::string type = type_of(node);
    if (type == "Sequence") {
      const auto it = node.find("normalizers");
      if (it == node.end() || !it->is_array()) fail("normalizer Sequence without a \"normalizers\" list");
      if (depth >= kMaxNesting) fail("normalizer Sequences nested too deeply");
      for (const json& n : *it) load_normalizer(n, out, depth + 1);
    } else if (type == "NFC") {
      out.push_back(NormalForm::nfc);
    } else if (type == "NFD") {
      out.push_back(NormalForm::nfd);
    } else if (type == "NFKC") {
      out.push_back(NormalForm::nfkc);
    } else if (type == "NFKD") {
      out.push_back(NormalForm::nfkd);
    } else {
      fail("unsupported normalizer " + quote(type.empty() ? node.dump() : type) +
           " (supported: NFC, NFD, NFKC, NFKD, Sequence of these)");
    }
  }

  void load_pre_tokenizer(const json& node, std::vector<PreStep>& steps) const {
    if (node.is_null())
      fail("unsupported: no pre_tokenizer (only byte-level BPE, with a ByteLevel pre_tokenizer, is supported)");
    collect_pre_steps(node, steps);
    const auto byte_levels = std::count_if(steps.begin(), steps.end(),
                                           [](const PreStep& s) { return s.kind == PreStep::byte_level; });
    if (byte_levels != 1 || steps.back().kind != PreStep::byte_level)
      fail("unsupported pre_tokenizer layout: expected ByteLevel, optionally preceded by Split steps");
  }

  void collect_pre_steps(const json& node, std::vector<PreStep>& steps, int depth = 0) const {
    const std::string type = type_of(node);
    if (type == "Sequence") {
      const auto it = node.find("pretokenizers");
      if (it == node.end() || !it->is_array()) fail("pre_tokenizer Sequence without a \"pretokenizers\" list");
      if (depth >= kMaxNesting) fail("pre_tokenizer Sequences nested too deeply");
      for (const json& n : *it) collect_pre_steps(n, steps, depth + 1);
    } else if (type == "ByteLevel") {
      PreStep s;
      s.kind = PreStep::byte_level;
      // HF's ByteLevel::default() has add_prefix_space = true.
      s.add_prefix_space = get_bool(node, "add_prefix_space", true, "pre_tokenizer.ByteLevel");
      s.use_regex = get_bool(node, "use_regex", true, "pre_tokenizer.ByteLevel");
      steps.push_back(s);
    } else if (type == "Split") {
      const auto pattern = node.find("pattern");
      std::string regex;
      if (pattern != node.end() && pattern->is_object() && pattern->contains("Regex") &&
          (*pattern)["Regex"].is_string())
        regex = (*pattern)["Regex"].get<std::string>();
      if (regex != kGpt2SplitRegex)
        fail("unsupported Split pattern " + quote(pattern != node.end() ? pattern->dump() : "") +
             " (only the GPT-2 regex is supported)");
      const auto behavior = get_string(node, "behavior", "pre_tokenizer.Split").value_or("Isolated");
      if (behavior != "Isolated") fail("unsupported Split behavior " + quote(behavior) + " (only Isolated)");
      if (get_bool(node, "invert", false, "pre_tokenizer.Split")) fail("unsupported Split with invert=true");
      steps.push_back(PreStep{PreStep::split_gpt2, false, true});
    } else {
      fail("unsupported pre_tokenizer " + quote(type.empty() ? node.dump() : type) +
           " (supported: ByteLevel, Split with the GPT-2 regex, Sequence of these)");
    }
  }

  void check_decoder(const json& node) const {
    if (node.is_null())
      fail("unsupported: no decoder (only byte-level BPE, with a ByteLevel decoder, is supported)");
    std::string type = type_of(node);
    if (type == "Sequence") {
      const auto it = node.find("decoders");
      if (it != node.end() && it->is_array() && it->size() == 1) type = type_of((*it)[0]);
    }
    if (type != "ByteLevel")
      fail("unsupported decoder " + quote(type.empty() ? node.dump() : type) + " (only ByteLevel is supported)");
  }

  void load_model(const json& model, BpeModel& bpe) const {
    std::string type = type_of(model);
    if (type.empty() && model.contains("merges")) type = "BPE";  // HF infers untagged models too
    if (type != "BPE")
      fail("unsupported model type " + quote(type.empty() ? "(none)" : type) +
           " (only byte-level BPE is supported, not WordPiece, Unigram or WordLevel)");
    const auto dropout = model.find("dropout");
    if (dropout != model.end() && !dropout->is_null()) {
      if (!dropout->is_number()) fail("model.dropout must be a number or null");
      if (dropout->get<double>() > 0.0) fail("unsupported: BPE dropout " + dropout->dump() + " (training-only randomness)");
    }
    bpe.prefix = get_string(model, "continuing_subword_prefix", "model").value_or("");
    bpe.suffix = get_string(model, "end_of_word_suffix", "model").value_or("");
    bpe.ignore_merges = get_bool(model, "ignore_merges", false, "model");
    bpe.byte_fallback = get_bool(model, "byte_fallback", false, "model");
    bpe.fuse_unk = get_bool(model, "fuse_unk", false, "model");

    const auto vocab = model.find("vocab");
    if (vocab == model.end()) fail("missing model.vocab");
    if (!vocab->is_object()) fail("model.vocab must be an object of token -> id");
    bpe.vocab.reserve(vocab->size());
    for (const auto& [token, id] : vocab->items()) {
      const int32_t v = get_id(id, "model.vocab token " + quote(token));
      bpe.vocab.emplace(token, v);
    }

    if (const auto unk = get_string(model, "unk_token", "model")) {
      const auto id = bpe.lookup(*unk);
      if (!id) fail("model.unk_token " + quote(*unk) + " is not in the vocab");
      bpe.unk_id = *id;
    }

    const auto merges = model.find("merges");
    if (merges == model.end() || merges->is_null()) fail("missing model.merges");
    if (!merges->is_array()) fail("model.merges must be a list");
    bpe.merges.reserve(merges->size());
    int32_t rank = 0;
    size_t index = 0;
    for (const json& m : *merges) {
      ++index;
      std::string a, b;
      const std::string where = "bad merge #" + std::to_string(index);
      if (m.is_string()) {
        const std::string line = m.get<std::string>();
        if (line.starts_with("#version")) continue;  // header line of a merges.txt
        const size_t sp = line.find(' ');
        if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos)
          fail(where + " " + quote(line) + ": expected two tokens separated by one space");
        a = line.substr(0, sp);
        b = line.substr(sp + 1);
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        a = m[0].get<std::string>();
        b = m[1].get<std::string>();
      } else {
        fail(where + " " + quote(m.dump()) + ": expected \"a b\" or [\"a\", \"b\"]");
      }
      const auto ia = bpe.lookup(a), ib = bpe.lookup(b);
      if (!ia) fail(where + ": token " + quote(a) + " is not in the vocab");
      if (!ib) fail(where + ": token " + quote(b) + " is not in the vocab");
      // HF drops the continuing-subword prefix of the right side when naming the merged token.
      if (b.size() < bpe.prefix.size()) fail(where + ": token " + quote(b) + " is shorter than the subword prefix");
      const std::string merged = a + b.substr(bpe.prefix.size());
      const auto im = bpe.lookup(merged);
      if (!im) fail(where + ": merged token " + quote(merged) + " is not in the vocab");
      bpe.merges.insert(*ia, *ib, rank++, *im);
    }
    bpe.build_byte_tables();
  }

  void load_added_tokens(const json& node, Tokenizer::Impl& impl) const {
    if (node.is_null()) return;
    if (!node.is_array()) fail("added_tokens must be a list");
    size_t index = 0;
    for (const json& t : node) {
      const std::string where = "added_tokens[" + std::to_string(index++) + "]";
      if (!t.is_object()) fail(where + " must be an object");
      AddedToken tok;
      const auto content = get_string(t, "content", where);
      if (!content) fail(where + " has no content");
      tok.content = *content;
      const auto id = t.find("id");
      if (id == t.end()) fail(where + " " + quote(tok.content) + " has no id");
      tok.id = get_id(*id, where + " " + quote(tok.content));
      tok.special = get_bool(t, "special", false, where);
      tok.normalized = get_bool(t, "normalized", !tok.special, where);
      tok.lstrip = get_bool(t, "lstrip", false, where);
      tok.rstrip = get_bool(t, "rstrip", false, where);
      tok.single_word = get_bool(t, "single_word", false, where);
      if (tok.content.empty()) continue;  // HF ignores empty added tokens
      if (!is_valid_utf8(tok.content)) fail(where + " content is not valid UTF-8");
      // Like HF, a token already in the model vocab keeps the vocab's id.
      if (const auto vid = impl.bpe.lookup(tok.content)) tok.id = *vid;
      if (impl.added_ids.contains(tok.content)) fail(where + ": duplicate added token " + quote(tok.content));
      impl.added_ids.emplace(tok.content, tok.id);
      impl.added.push_back(std::move(tok));
    }
    // HF builds its matchers from the special tokens first, then the others, each in file order.
    for (int pass = 0; pass < 2; ++pass) {
      for (size_t i = 0; i < impl.added.size(); ++i) {
        const AddedToken& tok = impl.added[i];
        if (tok.special != (pass == 0)) continue;
        if (tok.normalized) {
          impl.normalized_trie.add(normalize(tok.content, impl.normalizers), int32_t(i));
        } else {
          impl.raw_trie.add(tok.content, int32_t(i));
        }
      }
    }
  }

  void build_id_tables(Tokenizer::Impl& impl) const {
    int64_t max_id = -1;
    for (const auto& [token, id] : impl.bpe.vocab) max_id = std::max<int64_t>(max_id, id);
    for (const AddedToken& t : impl.added) max_id = std::max<int64_t>(max_id, t.id);
    const size_t n = size_t(max_id + 1);
    std::vector<const std::string*> strings(n, nullptr);
    for (const auto& [token, id] : impl.bpe.vocab) {
      const std::string*& slot = strings[size_t(id)];
      if (slot != nullptr)
        fail("duplicate id " + std::to_string(id) + " in model.vocab: " + quote(*slot) + " and " + quote(token));
      slot = &token;
    }
    std::vector<uint8_t> special(n, 0);
    for (size_t i = 0; i < impl.added.size(); ++i) {
      const AddedToken& t = impl.added[i];
      const std::string*& slot = strings[size_t(t.id)];
      if (slot != nullptr && *slot != t.content)
        fail("duplicate id " + std::to_string(t.id) + ": added token " + quote(t.content) + " and " + quote(*slot));
      slot = &t.content;
      if (t.special) special[size_t(t.id)] = 1;
    }
    impl.flags.assign(n, 0);
    impl.decoded_offset.assign(n + 1, 0);
    impl.raw_offset.assign(n + 1, 0);
    for (size_t id = 0; id < n; ++id) {
      impl.decoded_offset[id] = uint32_t(impl.decoded_blob.size());
      impl.raw_offset[id] = uint32_t(impl.raw_blob.size());
      if (strings[id] == nullptr) continue;
      if (!is_valid_utf8(*strings[id])) fail("token " + quote(*strings[id]) + " is not valid UTF-8");
      impl.flags[id] = Tokenizer::Impl::kHas | (special[id] ? Tokenizer::Impl::kSpecial : 0);
      impl.raw_blob += *strings[id];
      impl.decoded_blob += byte_level_decode_token(*strings[id]);
    }
    impl.decoded_offset[n] = uint32_t(impl.decoded_blob.size());
    impl.raw_offset[n] = uint32_t(impl.raw_blob.size());
  }

  std::string origin_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open file");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error(path + ": read error");
  return std::move(ss).str();
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Public API

Tokenizer::Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

Tokenizer Tokenizer::from_file(const std::string& path) {
  std::error_code ec;
  std::string file = path;
  if (std::filesystem::is_directory(path, ec)) file = (std::filesystem::path(path) / "tokenizer.json").string();
  if (!std::filesystem::exists(file, ec)) throw Error(file + ": no such file");
  return from_json_text(read_file(file), file);
}

Tokenizer Tokenizer::from_json_text(const std::string& text, const std::string& origin_name) {
  return Tokenizer(Loader(origin_name).load(text));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::string repaired;
  if (!is_valid_utf8(text)) {
    repaired = utf8_lossy(text);
    text = repaired;
  }
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  impl_->encode_into(text, out);
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string bytes;
  for (int32_t id : ids)
    if (!(skip_special && impl_->special(id))) bytes += impl_->decoded(id);
  return utf8_lossy(bytes);
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (const auto it = impl_->added_ids.find(token); it != impl_->added_ids.end()) return it->second;
  if (const auto it = impl_->bpe.vocab.find(std::string(token)); it != impl_->bpe.vocab.end()) return it->second;
  return std::nullopt;
}

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  if (!impl_->has(id)) return std::nullopt;
  return std::string(impl_->raw(id));
}

bool Tokenizer::has_token(int32_t id) const { return impl_->has(id); }
bool Tokenizer::is_special(int32_t id) const { return impl_->special(id); }
int32_t Tokenizer::vocab_size() const { return impl_->vocab_size(); }
std::optional<int32_t> Tokenizer::eos_id() const { return token_to_id("<|endoftext|>"); }
std::string Tokenizer::token_text(int32_t id) const { return std::string(impl_->decoded(id)); }
const std::string& Tokenizer::origin() const { return impl_->origin; }

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special)
    : tokenizer_(tokenizer), skip_special_(skip_special) {}

std::string StreamDecoder::push(int32_t id) {
  if (skip_special_ && tokenizer_.is_special(id)) return {};
  pending_ += tokenizer_.impl_->decoded(id);
  std::string out;
  const size_t used = append_lossy(pending_, out, /*final=*/false);
  pending_.erase(0, used);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  append_lossy(pending_, out, /*final=*/true);
  pending_.clear();
  return out;
}

std::string utf8_lossy(std::string_view bytes) {
  if (is_valid_utf8(bytes)) return std::string(bytes);
  std::string out;
  out.reserve(bytes.size() + 8);
  append_lossy(bytes, out, /*final=*/true);
  return out;
}

std::string normalize_nfc(std::string_view text) { return normalize(text, {NormalForm::nfc}); }

}  // namespace mamba
