#pragma once
// Byte-level BPE tokenizer read from a Hugging Face tokenizer.json: the GPT-NeoX-20B tokenizer of the
// Mamba / Mamba-2 checkpoints and the small tokenizer of the default model use this format.
// Encoding reproduces HF `tokenizers` (Tokenizer.encode(text, add_special_tokens=False)) id for id;
// decoding reproduces Tokenizer.decode (String::from_utf8_lossy over the token bytes).
//
// Supported: model BPE (merges as "a b" strings or ["a","b"] pairs, ignore_merges, byte_fallback,
// unk_token/fuse_unk, continuing_subword_prefix, end_of_word_suffix); normalizers NFC/NFD/NFKC/NFKD
// or a Sequence of them; pre_tokenizer ByteLevel (add_prefix_space, use_regex) alone or in a Sequence
// after Split(GPT-2 regex, Isolated); decoder ByteLevel; added tokens with all their flags.
// Anything else (WordPiece, Unigram, other regexes, Lowercase, Metaspace, BPE dropout, ...) is
// rejected at load time with a mamba::Error, never silently mis-tokenized.
//
// Unicode data comes from utf8proc (Unicode 15 in Debian 12). HF uses Oniguruma (Unicode 16) for the
// pre-tokenizer regex and older tables for NFC, so ids can differ for characters assigned after
// Unicode 15, and for the few strings whose normalization involves characters newer than HF's tables
// (e.g. canonical reordering around U+1DFA); everything else has been checked code point by code point.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mamba {

class Tokenizer {
 public:
  // `path` is a tokenizer.json or a directory containing one. Throws mamba::Error naming the file.
  static Tokenizer from_file(const std::string& path);
  // `origin_name` only labels error messages.
  static Tokenizer from_json_text(const std::string& text, const std::string& origin_name);

  // Never adds BOS/EOS (the post_processor is ignored). Invalid UTF-8 in `text` is first replaced by
  // U+FFFD exactly as String::from_utf8_lossy would. All const members are thread-safe; encode's word
  // cache is sharded and locked.
  std::vector<int32_t> encode(std::string_view text) const;
  // Ids without a string (a padded embedding) decode to nothing; invalid UTF-8 becomes U+FFFD.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;  // added tokens first, then vocab
  std::optional<std::string> id_to_token(int32_t id) const;          // the string as the file spells it
  bool has_token(int32_t id) const;
  bool is_special(int32_t id) const;
  int32_t vocab_size() const;             // max id + 1; ids in [0, vocab_size) may still lack a string
  std::optional<int32_t> eos_id() const;  // <|endoftext|> if present
  // The bytes one token decodes to; may be part of a multi-byte UTF-8 character. Empty if no token.
  std::string token_text(int32_t id) const;
  const std::string& origin() const;

  struct Impl;  // implementation detail, defined in tokenizer_impl.h

 private:
  friend class StreamDecoder;
  explicit Tokenizer(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;  // immutable after load, so copies share it (and its cache)
};

// Incremental decoding for generation: push ids one at a time and get back only complete UTF-8.
// Concatenating every push() and the final flush() equals Tokenizer::decode of all the ids.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special = false);
  std::string push(int32_t id);
  // Ends the stream: an unfinished multi-byte sequence becomes one U+FFFD. The decoder is then reset.
  std::string flush();
  void reset() { pending_.clear(); }

 private:
  Tokenizer tokenizer_;
  bool skip_special_;
  std::string pending_;  // at most 3 bytes: the start of a character still missing its tail
};

// String::from_utf8_lossy: each maximal invalid subpart becomes one U+FFFD.
std::string utf8_lossy(std::string_view bytes);
// Unicode NFC via utf8proc (Unicode version: utf8proc_unicode_version()). Input must be valid UTF-8.
std::string normalize_nfc(std::string_view text);

}  // namespace mamba
