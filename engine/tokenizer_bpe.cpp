#include "engine/tokenizer_bpe.h"

#include <algorithm>
#include <climits>
#include <cstdio>

#include "engine/tokenizer_pretokenize.h"

namespace mamba::tokenizer_detail {

void BpeModel::build_byte_tables() {
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

void BpeModel::initial_symbols(std::string_view word, std::vector<int32_t>& syms) const {
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
      const bool all = std::all_of(s.begin(), s.end(), [&](char c) { return fallback_ids[static_cast<unsigned char>(c)] >= 0; });
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

void BpeModel::merge(std::vector<int32_t>& syms) const {
  if (syms.size() < 2) return;
  if (syms.size() <= kSmallWord) {
    merge_small(syms);
  } else {
    merge_large(syms);
  }
}

void BpeModel::merge_small(std::vector<int32_t>& syms) const {
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

void BpeModel::merge_large(std::vector<int32_t>& syms) const {
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

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out, std::vector<int32_t>& scratch) const {
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

}  // namespace mamba::tokenizer_detail
