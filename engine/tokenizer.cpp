// The public Tokenizer API: encoding (added tokens, normalizers, pre-tokenizer, BPE), decoding and
// StreamDecoder. Loading is in tokenizer_load.cpp; tokenizer_impl.h lists the other parts.
#include "engine/tokenizer.h"

#include "engine/tokenizer_impl.h"

namespace mamba {

using namespace tokenizer_detail;

// ---------------------------------------------------------------------------------------------------
// Encoding

void Tokenizer::Impl::encode_word(std::string_view word, std::vector<int32_t>& out, std::vector<int32_t>& scratch) const {
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

void Tokenizer::Impl::encode_into(std::string_view text, std::vector<int32_t>& out) const {
  std::vector<int32_t> scratch;
  split_added(text, raw_trie, added, [&](std::string_view piece, int32_t id) {
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
    split_added(norm, normalized_trie, added, [&](std::string_view sub, int32_t sub_id) {
      if (sub_id >= 0) {
        out.push_back(sub_id);
        return;
      }
      pre_tokenize(pre_steps, sub, 0, [&](std::string_view word) { encode_word(word, out, scratch); });
    });
  });
}

// ---------------------------------------------------------------------------------------------------
// Public API

Tokenizer::Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

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

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special) : tokenizer_(tokenizer), skip_special_(skip_special) {}

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

}  // namespace mamba
