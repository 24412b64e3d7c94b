// The KV cache's store of one token's keys and values through every layer (KvCache::store):
// the per-position quantization of V (and K per token), or K's newest KIVI group and, every
// k_group positions, that group's per-channel codes. Plain C++ shared by every ISA, so it is
// registered once. The cache is filled once before timing, so the timed stores write to pages
// already in memory (a real decode faults a new page in now and then). kv_fill is the other
// side: a new cache filled token by token to its whole context, each layer's storage growing as
// it fills, with the slowest token's store as a counter (where the growth cost lands).
#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "bench/bench.h"
#include "engine/kv_cache.h"

namespace rotor::bench {

namespace {

struct KvShape {
  const char* name;
  int layers, kv_heads, head_dim;
};
constexpr int kPositions = 1024;  // the cache's context: positions wrap around it

// One token's keys or values at shape s: random normal floats.
std::vector<float> random_row(KvShape s, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> row(static_cast<size_t>(s.kv_heads) * s.head_dim);
  for (float& x : row) x = normal(rng);
  return row;
}

void run_kv_store(benchmark::State& state, KvShape s, int k_group) {
  KvCache cache(s.layers, kPositions, s.kv_heads, s.head_dim, 4, k_group);
  const std::vector<float> k = random_row(s, 3), v = random_row(s, 4);
  const size_t row = k.size();
  auto store_token = [&](int pos) {
    for (int l = 0; l < s.layers; ++l) cache.store(l, pos, k.data(), v.data());
  };
  for (int pos = 0; pos < kPositions; ++pos) store_token(pos);
  int pos = 0;
  for (auto _ : state) {
    store_token(pos);  // position 0 again: with KIVI groups a rewind, one truncation per pass
    pos = (pos + 1) % kPositions;
  }
  set_work(state, 2.0 * s.layers * row * sizeof(float), 0.0);  // the float K and V read
}

void run_kv_fill(benchmark::State& state, KvShape s, int k_group) {
  constexpr int kContext = 4096;
  const std::vector<float> k = random_row(s, 3), v = random_row(s, 4);
  const size_t row = k.size();
  using Clock = std::chrono::steady_clock;
  double slowest = 0.0;
  for (auto _ : state) {
    KvCache cache(s.layers, kContext, s.kv_heads, s.head_dim, 4, k_group);
    for (int pos = 0; pos < kContext; ++pos) {
      const Clock::time_point start = Clock::now();
      for (int l = 0; l < s.layers; ++l) cache.store(l, pos, k.data(), v.data());
      slowest = std::max(slowest, std::chrono::duration<double>(Clock::now() - start).count());
    }
  }
  state.counters["slowest_token_ms"] = slowest * 1e3;
  set_work(state, 2.0 * s.layers * row * sizeof(float) * kContext, 0.0);
}

}  // namespace

void register_kv_store() {
  const KvShape shapes[] = {{"llama2-7b", 32, 32, 128}, {"tinyllama-1.1b", 22, 4, 64}};
  for (const KvShape& s : shapes)
    for (int k_group : {32, 0}) {
      const std::string name = std::string("kv_store/shared/") + s.name + "/kv4/" +
                               (k_group ? "kivi" + std::to_string(k_group) : "k-per-token");
      benchmark::RegisterBenchmark(name.c_str(), run_kv_store, s, k_group)
          ->Unit(benchmark::kMicrosecond);
    }
  for (int k_group : {32, 0}) {  // the 7B shape: 2.3 GB of cache at 4,096 positions
    const std::string name = std::string("kv_fill/shared/llama2-7b/kv4/ctx4096/") +
                             (k_group ? "kivi" + std::to_string(k_group) : "k-per-token");
    benchmark::RegisterBenchmark(name.c_str(), run_kv_fill, shapes[0], k_group)
        ->Unit(benchmark::kMillisecond)
        ->Iterations(1);
  }
}

}  // namespace rotor::bench
