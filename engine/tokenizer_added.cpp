#include "engine/tokenizer_added.h"

#include "engine/tokenizer_unicode.h"

namespace mamba::tokenizer_detail {

void TokenTrie::add(std::string_view pattern, int32_t value) {
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

size_t TokenTrie::longest_at(std::string_view s, size_t pos, int32_t& value) const {
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

}  // namespace mamba::tokenizer_detail
