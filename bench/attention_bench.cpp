// attend: one query head over a 4- or 8-bit K/V cache (per-position scale and minimum), head
// size 128 (LLaMA) and 8 (stories260K, whose rows are shorter than a vector); attend_gqa: the
// query heads of one KV head at once over the default cache (K in KIVI groups of 32), as
// stories260K (2 heads of 8), TinyLlama (8 heads of 64), LLaMA-2-7B (1 of 128) and LLaMA-3-8B
// (4 of 128) decode, and at TinyLlama's shape with K per token; attend_walk: one LLaMA-2-7B
// token's attention at depth, out of cache, on 4 KB or 2 MB pages. Bytes are the cache codes
// and parameters read; ops the q·k and p·v multiply-adds.
#include <memory>
#include <random>
#include <vector>

#include "bench/bench.h"
#include "engine/import/dtype.h"
#include "engine/zeroed_array.h"

namespace rotor::bench {

namespace {

// n_q query heads of head_dim over n_pos positions of one KV head. K per position (k_group 0)
// or in KIVI groups of k_group positions (the last, incomplete group in float); V per position.
void run(benchmark::State& state, Isa isa, int head_dim, int n_q, int bits, int n_pos,
         int k_group) {
  const size_t head_bytes = static_cast<size_t>(head_dim) * bits / 8;
  // K's codes, and its scale and minimum per position or per channel of each complete group.
  const int k_rows = k_group ? n_pos / k_group * k_group : n_pos;
  const int k_params = k_group ? n_pos / k_group * head_dim : n_pos;
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<uint8_t> k_codes(k_rows * head_bytes), v_codes(n_pos * head_bytes);
  for (uint8_t& c : k_codes) c = static_cast<uint8_t>(rng());
  for (uint8_t& c : v_codes) c = static_cast<uint8_t>(rng());
  // Scales and minimums in f16, as the cache holds them.
  std::vector<uint16_t> k_scale(k_params, f32_to_f16(0.01f)), k_min(k_params, f32_to_f16(-0.5f)),
      v_scale(n_pos, f32_to_f16(0.01f)), v_min(n_pos, f32_to_f16(-0.5f));
  std::vector<float> k_float(static_cast<size_t>(head_dim) * k_group), q(n_q * head_dim),
      scores(n_q * n_pos), out(n_q * head_dim);
  for (float& v : k_float) v = uniform(rng);
  for (float& v : q) v = uniform(rng);
  KvView kv;
  kv.head_dim = head_dim;
  kv.bits = bits;
  kv.v_codes = v_codes.data();
  kv.v_scale = v_scale.data();
  kv.v_min = v_min.data();
  if (k_group) {
    kv.k_group = k_group;
    kv.k_group_codes = k_codes.data();
    kv.k_group_scale = k_scale.data();
    kv.k_group_min = k_min.data();
    kv.k_float = k_float.data();
    kv.k_float_stride = head_dim;
  } else {
    kv.k_codes = k_codes.data();
    kv.k_scale = k_scale.data();
    kv.k_min = k_min.data();
  }
  const KernelTable& k = kernels_for(isa);
  for (auto _ : state) {
    k.attend(kv, q.data(), n_q, n_pos, scores.data(), out.data());
    benchmark::DoNotOptimize(out.data());
  }
  // Bytes: the K and V codes, V's scale and minimum per position and, per position, K's
  // (KIVI's per-group ones, 1/k_group as many, are left out).
  set_work(state, n_pos * (2.0 * head_bytes + (k_group ? 2 : 4) * sizeof(uint16_t)),
           4.0 * n_q * n_pos * head_dim);
}

// A decode step's walk over a LLaMA-2-7B cache at depth: 32 layers × 32 KV heads, each over
// 4064 positions of 4-bit codes, K in KIVI groups of 32 (the default), ~630 MB in all, so
// every call reads from memory as decode at depth does. The arrays are the cache's, in 4 KB
// pages or, as KvCache maps them, in 2 MB ones: under nested paging the walk's TLB misses
// cost more than on bare metal.
struct CacheWalk {
  static constexpr int kHeads = 32 * 32, kHeadDim = 128, kPositions = 4064, kGroup = 32;
  static constexpr size_t kRow = kHeadDim / 2;  // bytes of a position's codes
  static constexpr size_t kGroupParams = size_t{kHeadDim} * (kPositions / kGroup);
  ZeroedArray<uint8_t> k_codes, v_codes;
  ZeroedArray<uint16_t> k_scale, k_min, v_scale, v_min;  // f16
  std::vector<float> k_float = std::vector<float>(size_t{kHeadDim} * kGroup, 0.1f);

  explicit CacheWalk(Pages pages)
      : k_codes(kRow * kPositions * kHeads, pages),
        v_codes(kRow * kPositions * kHeads, pages),
        k_scale(kGroupParams * kHeads, pages),
        k_min(kGroupParams * kHeads, pages),
        v_scale(size_t{kPositions} * kHeads, pages),
        v_min(size_t{kPositions} * kHeads, pages) {
    for (size_t i = 0; i < k_codes.size(); ++i) {
      k_codes[i] = static_cast<uint8_t>(i * 131 >> 3);
      v_codes[i] = static_cast<uint8_t>(i * 197 >> 2);
    }
    std::fill(k_scale.begin(), k_scale.end(), f32_to_f16(0.01f));
    std::fill(k_min.begin(), k_min.end(), f32_to_f16(-0.5f));
    std::fill(v_scale.begin(), v_scale.end(), f32_to_f16(0.01f));
    std::fill(v_min.begin(), v_min.end(), f32_to_f16(-0.5f));
  }

  KvView head(int h) const {
    KvView kv;
    kv.head_dim = kHeadDim;
    kv.bits = 4;
    kv.v_codes = v_codes.data() + h * kRow * kPositions;
    kv.v_scale = v_scale.data() + size_t{kPositions} * h;
    kv.v_min = v_min.data() + size_t{kPositions} * h;
    kv.k_group = kGroup;
    kv.k_group_codes = k_codes.data() + h * kRow * kPositions;
    kv.k_group_scale = k_scale.data() + kGroupParams * h;
    kv.k_group_min = k_min.data() + kGroupParams * h;
    kv.k_float = k_float.data();
    kv.k_float_stride = kHeadDim;
    return kv;
  }
};

void run_walk(benchmark::State& state, Isa isa, Pages pages) {
  // Made once per page kind and kept: filling ~630 MB takes longer than the runs.
  static std::unique_ptr<CacheWalk> walks[2];
  std::unique_ptr<CacheWalk>& walk = walks[pages == Pages::kHuge];
  if (!walk) walk = std::make_unique<CacheWalk>(pages);
  using W = CacheWalk;
  std::vector<float> q(W::kHeadDim, 0.3f), scores(W::kPositions), out(W::kHeadDim);
  const KernelTable& k = kernels_for(isa);
  for (auto _ : state)
    for (int h = 0; h < W::kHeads; ++h) {
      k.attend(walk->head(h), q.data(), 1, W::kPositions, scores.data(), out.data());
      benchmark::DoNotOptimize(out.data());
    }
  const double per_position = 2.0 * W::kRow + 2 * sizeof(uint16_t) +
                              2.0 * sizeof(uint16_t) * W::kHeadDim / W::kGroup;
  set_work(state, per_position * W::kPositions * W::kHeads,
           4.0 * W::kPositions * W::kHeadDim * W::kHeads);
}

}  // namespace

void register_attention(Isa isa) {
  for (int head_dim : {128, 8})
    for (int bits : {4, 8})
      for (int n_pos : {512, 4096}) {
        const std::string detail = "kv" + std::to_string(bits) + "/d" + std::to_string(head_dim) +
                                   "/pos" + std::to_string(n_pos);
        benchmark::RegisterBenchmark(bench_name("attend", isa, detail).c_str(), run, isa,
                                     head_dim, 1, bits, n_pos, 0)
            ->Unit(benchmark::kMicrosecond);
      }
  // stories260K's, TinyLlama's, LLaMA-2-7B's and LLaMA-3-8B's shapes; the positions past a
  // multiple of 32 (159, 543, 4127) end in 31 float rows, the newest group's. KIVI groups of
  // 32, and K per token (k_group 0) at TinyLlama's shape.
  struct Gqa { int head_dim, n_q, n_pos, k_group; };
  for (const Gqa& g : {Gqa{8, 2, 128, 32}, Gqa{8, 2, 159, 32}, Gqa{64, 8, 512, 32},
                       Gqa{64, 8, 543, 32}, Gqa{64, 8, 4096, 32}, Gqa{64, 8, 4096, 0},
                       Gqa{128, 1, 4096, 32}, Gqa{128, 1, 4127, 32},
                       Gqa{128, 4, 4096, 32}}) {
    const std::string detail = "kv4/d" + std::to_string(g.head_dim) + "/h" +
                               std::to_string(g.n_q) + "/pos" + std::to_string(g.n_pos) +
                               (g.k_group ? "" : "/k-per-token");
    benchmark::RegisterBenchmark(bench_name("attend_gqa", isa, detail).c_str(), run, isa,
                                 g.head_dim, g.n_q, 4, g.n_pos, g.k_group)
        ->Unit(benchmark::kMicrosecond);
  }
  if (isa == Isa::kScalar) return;  // the reference: seconds a step, and not a decode path
  for (Pages pages : {Pages::kDefault, Pages::kHuge})
    benchmark::RegisterBenchmark(
        bench_name("attend_walk", isa,
                   std::string("kv4/d128/h1024/pos4064/") + (pages == Pages::kHuge ? "2m" : "4k"))
            .c_str(),
        run_walk, isa, pages)
        ->Unit(benchmark::kMillisecond);
}

}  // namespace rotor::bench
