#pragma once
// Tokenizer internals: the BPE model (vocab, merge ranks, HF's merge order, byte fallback, unk) and the
// word cache in front of it.
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mamba::tokenizer_detail {

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

  // Fills byte_ids and fallback_ids; call once vocab, prefix and suffix are set.
  void build_byte_tables();

  // The initial symbols of a word (raw bytes), following HF's BPE::merge_word: a character missing
  // from the vocab becomes byte-fallback tokens of its (byte-level) UTF-8, else the unk token (fused if
  // asked), else it is dropped.
  void initial_symbols(std::string_view word, std::vector<int32_t>& syms) const;

  // Repeatedly merges the lowest-ranked adjacent pair, leftmost first: exactly the order HF's
  // heap-based Word::merge_all produces.
  void merge(std::vector<int32_t>& syms) const;

  static constexpr size_t kSmallWord = 96;

  // O(n^2) but allocation-free and cache friendly for ordinary words.
  void merge_small(std::vector<int32_t>& syms) const;

  // O(n log n) for pathological words (a megabyte without a space): HF's algorithm, a min-heap of
  // candidate merges over a linked list of symbols, with stale entries skipped.
  void merge_large(std::vector<int32_t>& syms) const;

  // Tokenizes one pre-token given as raw bytes (before the byte-level mapping).
  void encode_word(std::string_view word, std::vector<int32_t>& out, std::vector<int32_t>& scratch) const;
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

}  // namespace mamba::tokenizer_detail
