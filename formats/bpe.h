// The BPE merge loop shared by the Hugging Face BPE model and the llama2.c tokenizer.
// Symbols sit in a linked list over their original positions; candidate pairs wait in a
// min-heap keyed by (rank, position), so the lowest-rank pair merges first and ties go to the
// leftmost pair: Hugging Face's Word::merge_all, and llama2.c's "highest score, first found"
// with rank = -score. Stale heap entries are skipped when popped. O(n log n) per word.
#pragma once

#include <queue>
#include <vector>

namespace sq {

// `pair_rank(a, b, &rank, &merged)` returns true when ids a, b may merge into `merged`.
template <class Rank, class PairFn>
void BpeMerge(std::vector<int>& ids, PairFn pair_rank) {
  const int n = static_cast<int>(ids.size());
  if (n < 2) return;
  std::vector<int> prev(n), next(n);
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct Cand {
    Rank rank;
    int pos, left, right, merged;
    bool operator>(const Cand& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto consider = [&](int pos) {
    if (pos < 0 || next[pos] < 0) return;
    Rank rank;
    int merged;
    if (pair_rank(ids[pos], ids[next[pos]], &rank, &merged)) {
      heap.push({rank, pos, ids[pos], ids[next[pos]], merged});
    }
  };
  for (int i = 0; i + 1 < n; ++i) consider(i);
  std::vector<bool> dead(n, false);
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    int r = next[c.pos];
    if (dead[c.pos] || r < 0 || ids[c.pos] != c.left || ids[r] != c.right) continue;
    ids[c.pos] = c.merged;  // the left symbol absorbs the right one
    dead[r] = true;
    next[c.pos] = next[r];
    if (next[r] >= 0) prev[next[r]] = c.pos;
    consider(prev[c.pos]);
    consider(c.pos);
  }
  int w = 0;
  for (int i = 0; i < n; ++i) {
    if (!dead[i]) ids[w++] = ids[i];
  }
  ids.resize(w);
}

}  // namespace sq
