#pragma once
// Tokenizer internals: the pre-tokenizer. GPT-2's byte-level alphabet, the scanner that replaces the
// GPT-2 split regex, and the pipeline of Split / ByteLevel steps a tokenizer.json describes.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/tokenizer_unicode.h"

namespace mamba::tokenizer_detail {

// The only Split pattern supported, as tokenizer.json spells it.
inline constexpr std::string_view kGpt2SplitRegex = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

// ---------------------------------------------------------------------------------------------------
// GPT-2's byte-level alphabet: every byte becomes a printable character so that BPE never sees
// whitespace or control characters (byte 0x20 becomes 'Ġ' U+0120).

struct ByteAlphabet {
  std::array<char32_t, 256> byte_to_char{};
  std::array<int16_t, 324> char_to_byte{};  // the alphabet's code points are all below 324
  std::array<std::string, 256> byte_to_utf8;

  ByteAlphabet();
};

const ByteAlphabet& alphabet();  // built once

// Raw bytes to their alphabet characters, as UTF-8.
std::string byte_level_encode(std::string_view raw);

// HF's ByteLevel decoder, one token at a time: a token made only of alphabet characters becomes the
// bytes they stand for; any other token (e.g. an added "<|endoftext|>" or a run of real spaces) is
// passed through as its own UTF-8.
std::string byte_level_decode_token(std::string_view token);

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
// Pre-tokenizer pipeline: Split(GPT-2 regex) steps, then one ByteLevel step.

struct PreStep {
  enum Kind { split_gpt2, byte_level } kind = byte_level;
  bool add_prefix_space = false;
  bool use_regex = true;
};

// Runs a non-empty `piece` through steps[step..] and emits the words it splits into (still raw bytes:
// the byte-level mapping is applied by the BPE model).
template <class Emit>
void pre_tokenize(const std::vector<PreStep>& steps, std::string_view piece, size_t step, Emit&& emit) {
  if (step == steps.size()) {
    emit(piece);
    return;
  }
  const PreStep& st = steps[step];
  auto next = [&](std::string_view w) {
    if (!w.empty()) pre_tokenize(steps, w, step + 1, emit);
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

}  // namespace mamba::tokenizer_detail
