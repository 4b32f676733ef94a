#pragma once
// Tokenizer internals: added tokens (tokenizer.json "added_tokens") and how they are found in text,
// following HF's AddedVocabulary, including its lstrip / rstrip / single_word flags.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mamba::tokenizer_detail {

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
  void add(std::string_view pattern, int32_t value);

  bool empty() const { return nodes_.empty(); }

  // Returns the length of the longest pattern at s[pos] (0 if none) and stores its value.
  size_t longest_at(std::string_view s, size_t pos, int32_t& value) const;

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
size_t whitespace_start_at_end(std::string_view s);
size_t whitespace_end_at_start(std::string_view s);
bool ends_with_word(std::string_view s);
bool starts_with_word(std::string_view s);

// HF AddedVocabulary::find_matches: emits the pieces of `s` between added tokens (with id -1) and the
// tokens (an empty piece with the token's id). `trie` maps patterns to indices into `added`.
// Kept line for line, quirks included: lstrip / rstrip swallow whitespace into the token, and the
// search resumes at the end of the match itself, not after what rstrip swallowed.
template <class Emit>
void split_added(std::string_view s, const TokenTrie& trie, const std::vector<AddedToken>& added, Emit&& emit) {
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

}  // namespace mamba::tokenizer_detail
