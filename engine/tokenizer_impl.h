#pragma once
// Tokenizer internals: the state behind a Tokenizer, shared by the loader (tokenizer_load.cpp), which
// fills it, and the public API (tokenizer.cpp), which reads it. Immutable once loaded, except for the
// word cache, which locks itself.
//
// The pipeline and its files: UTF-8 and Unicode classes, normalizers (tokenizer_unicode) · added-token
// matching (tokenizer_added) · pre-tokenizer: GPT-2 scanner, byte-level alphabet (tokenizer_pretokenize)
// · BPE model and word cache (tokenizer_bpe) · tokenizer.json loader (tokenizer_load.cpp) · encode /
// decode / StreamDecoder (tokenizer.cpp).
// Every behaviour copies HF `tokenizers` (Rust), including its quirks, because the models were trained
// on its ids; comments point out where HF's behaviour is surprising.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/tokenizer.h"
#include "engine/tokenizer_added.h"
#include "engine/tokenizer_bpe.h"
#include "engine/tokenizer_pretokenize.h"
#include "engine/tokenizer_unicode.h"

namespace mamba {

struct Tokenizer::Impl {
  std::string origin;
  tokenizer_detail::BpeModel bpe;
  std::vector<tokenizer_detail::NormalForm> normalizers;
  std::vector<tokenizer_detail::PreStep> pre_steps;
  std::vector<tokenizer_detail::AddedToken> added;
  std::unordered_map<std::string, int32_t, tokenizer_detail::StringHash, std::equal_to<>> added_ids;  // content -> id
  tokenizer_detail::TokenTrie raw_trie;         // added tokens with normalized=false, matched on the input text
  tokenizer_detail::TokenTrie normalized_trie;  // normalized=true ones, matched (in normalized form) on normalized text

  // Per id: offsets into the blobs, and flags.
  std::string decoded_blob, raw_blob;
  std::vector<uint32_t> decoded_offset, raw_offset;  // size vocab_size + 1
  std::vector<uint8_t> flags;
  static constexpr uint8_t kHas = 1, kSpecial = 2;

  tokenizer_detail::WordCache cache;

  int32_t vocab_size() const { return int32_t(flags.size()); }
  bool has(int32_t id) const { return id >= 0 && id < vocab_size() && (flags[size_t(id)] & kHas); }
  bool special(int32_t id) const { return has(id) && (flags[size_t(id)] & kSpecial); }
  std::string_view decoded(int32_t id) const {
    if (!has(id)) return {};
    return std::string_view(decoded_blob).substr(decoded_offset[size_t(id)], decoded_offset[size_t(id) + 1] - decoded_offset[size_t(id)]);
  }
  std::string_view raw(int32_t id) const {
    if (!has(id)) return {};
    return std::string_view(raw_blob).substr(raw_offset[size_t(id)], raw_offset[size_t(id) + 1] - raw_offset[size_t(id)]);
  }

  // Encodes valid UTF-8, appending to `out` (tokenizer.cpp).
  void encode_into(std::string_view text, std::vector<int32_t>& out) const;
  // One pre-tokenized word through the word cache and the BPE model.
  void encode_word(std::string_view word, std::vector<int32_t>& out, std::vector<int32_t>& scratch) const;
};

}  // namespace mamba
