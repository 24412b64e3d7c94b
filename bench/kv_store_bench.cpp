// The KV cache's store of one token's keys and values through every layer (KvCache::store):
// the per-position quantization of V (and K per token), or K's newest KIVI group and, every
// k_group positions, that group's per-channel codes. Plain C++ shared by every ISA, so it is
// registered once. The cache is filled once before timing, so the timed stores write to pages
// already in memory (a real decode faults a new page in now and then).
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

void run_kv_store(benchmark::State& state, KvShape s, int k_group) {
  KvCache cache(s.layers, kPositions, s.kv_heads, s.head_dim, 4, k_group);
  const size_t row = static_cast<size_t>(s.kv_heads) * s.head_dim;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> k(row), v(row);
  for (float& x : k) x = normal(rng);
  for (float& x : v) x = normal(rng);
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
}

}  // namespace rotor::bench
