// Items [0, n) split among a pool's workers so that each walks one contiguous share of them in
// order (a decode GEMV's share of weight rows streams from memory as one sequence), while a
// worker that finishes early takes the back half of the largest share still in progress. With
// equal fixed halves the faster core idles at the end of every job: on the 2-core VM of
// docs/BENCHMARKS.md, in its fast memory state, the caller waited 6–17% of the decode jobs'
// time for the other thread's half.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <vector>

#include "engine/thread_pool.h"

namespace rotor {

namespace parallel_items_detail {

// One share, [front, back) packed in one word: its owner takes items from the front and a thief
// from the back, each with one compare-exchange. A cache line each, so the owner's claims stay
// in its own cache until a thief comes.
struct alignas(64) Share {
  std::atomic<uint64_t> range{0};
};
inline uint64_t pack(uint32_t front, uint32_t back) { return uint64_t{front} << 32 | back; }
inline uint32_t front_of(uint64_t r) { return static_cast<uint32_t>(r >> 32); }
inline uint32_t back_of(uint64_t r) { return static_cast<uint32_t>(r); }

// Takes one item from the front of s: false when it is empty.
inline bool take_front(Share& s, uint32_t* item) {
  uint64_t r = s.range.load();
  while (front_of(r) < back_of(r))
    if (s.range.compare_exchange_weak(r, pack(front_of(r) + 1, back_of(r)))) {
      *item = front_of(r);
      return true;
    }
  return false;
}

// Moves the back half of the largest other share into the empty share `own`: false when no
// share has items left.
inline bool steal(std::vector<Share>& shares, Share& own) {
  for (;;) {
    Share* victim = nullptr;
    uint64_t seen = 0;
    for (Share& s : shares) {
      const uint64_t r = s.range.load();
      if (&s != &own && back_of(r) > front_of(r) &&
          (!victim || back_of(r) - front_of(r) > back_of(seen) - front_of(seen))) {
        victim = &s;
        seen = r;
      }
    }
    if (!victim) return false;
    const uint32_t front = front_of(seen), back = back_of(seen);
    const uint32_t split = back - (back - front + 1) / 2;
    if (victim->range.compare_exchange_strong(seen, pack(front, split))) {
      own.range.store(pack(split, back));
      return true;
    }
  }
}

}  // namespace parallel_items_detail

// Calls fn(item, worker) once for every item in [0, n). Each of the pool's workers (at most n)
// starts on its own share and takes its items one at a time in increasing order, so the others
// can take what it has not reached yet.
template <class F>
void parallel_items(ThreadPool& pool, int n, F&& fn) {
  using namespace parallel_items_detail;
  if (n <= 0) return;
  const int n_shares = std::min(pool.size(), n);
  std::vector<Share> shares(n_shares);
  for (int s = 0; s < n_shares; ++s)
    shares[s].range.store(pack(static_cast<uint32_t>(int64_t{n} * s / n_shares),
                               static_cast<uint32_t>(int64_t{n} * (s + 1) / n_shares)));
  pool.parallel_for(n_shares, [&](int s, int worker) {
    Share& own = shares[s];
    do {
      for (uint32_t item; take_front(own, &item);) fn(static_cast<int>(item), worker);
    } while (steal(shares, own));
  });
}

}  // namespace rotor
