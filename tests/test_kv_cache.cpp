// The KV cache with K per channel over groups (KIVI): attention sees the same state in prefill
// (a block of stores, then its attention) as in decode; it approximates float attention; and
// a rewind into a complete group, then the same positions again, matches a fresh run up to the
// one extra rounding of the kept rows.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <string>

#include "engine/error.h"
#include "engine/import/dtype.h"
#include "engine/import/load_model.h"
#include "engine/kv_cache.h"
#include "engine/session.h"
#include "tests/helpers.h"

using namespace rotor;
using namespace rotor::test;

namespace {

constexpr int kHeads = 2, kHeadDim = 16, kLayers = 2;

// K (or q) of n positions (kHeads · kHeadDim each) with one large channel, as real K has.
std::vector<float> random_rows(int n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n) * kHeads * kHeadDim);
  for (size_t i = 0; i < x.size(); ++i) x[i] = normal(rng) * (i % kHeadDim == 5 ? 20.0f : 1.0f);
  return x;
}

// V of n positions, each head's row one random value repeated: exact at any bit width, so the
// attention's error is K's alone.
std::vector<float> constant_rows(int n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n) * kHeads * kHeadDim);
  for (size_t i = 0; i < x.size(); i += kHeadDim) std::fill_n(&x[i], kHeadDim, normal(rng));
  return x;
}

// A query of one head, small so that no one position takes all the weight.
std::vector<float> small_query(std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 0.1f);
  std::vector<float> q(kHeadDim);
  for (float& f : q) f = normal(rng);
  return q;
}

// The attention output of (layer, head 1) for a query at every n_pos in [first, last].
std::vector<float> attend_all(const KvCache& cache, int layer, const float* q, int first, int last) {
  std::vector<float> out, scores(cache.ctx()), o(kHeadDim);
  for (int n = first; n <= last; ++n) {
    cache.attend(layer, 1, q, 1, n, scores.data(), o.data());
    out.insert(out.end(), o.begin(), o.end());
  }
  return out;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float m = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

}  // namespace

TEST_CASE("kv cache: KIVI attention is the same after a block of stores as after each one") {
  std::mt19937 rng(5);
  const int n = 150, G = 32;
  const auto k = random_rows(n, rng), v = random_rows(n, rng), q = random_rows(1, rng);
  const size_t row = kHeads * kHeadDim;
  for (int bits : {4, 8}) {
    CAPTURE(bits);
    // ctx n: positions from 128 on never fill a group and stay float
    KvCache block(kLayers, n, kHeads, kHeadDim, bits, G), step(kLayers, n, kHeads, kHeadDim, bits, G);
    // blocks of 70 and 80 positions (each crossing group ends) in both layers, as prefill does
    std::vector<float> got, want;
    for (auto [begin, end] : {std::pair{0, 70}, std::pair{70, n}})
      for (int l = 0; l < kLayers; ++l) {
        for (int p = begin; p < end; ++p) block.store(l, p, &k[p * row], &v[p * row]);
        const auto a = attend_all(block, l, q.data(), begin + 1, end);
        got.insert(got.end(), a.begin(), a.end());
      }
    for (int p = 0; p < n; ++p)
      for (int l = 0; l < kLayers; ++l) {
        step.store(l, p, &k[p * row], &v[p * row]);
        const auto a = attend_all(step, l, q.data(), p + 1, p + 1);
        want.insert(want.end(), a.begin(), a.end());
      }
    // same order: per block, layer, then position
    std::vector<float> want_ordered;
    for (auto [begin, end] : {std::pair{0, 70}, std::pair{70, n}})
      for (int l = 0; l < kLayers; ++l)
        for (int p = begin; p < end; ++p)
          want_ordered.insert(want_ordered.end(), want.begin() + (p * kLayers + l) * kHeadDim,
                              want.begin() + (p * kLayers + l + 1) * kHeadDim);
    CHECK(max_abs_diff(got, want_ordered) == 0.0f);
  }
}

TEST_CASE("kv cache: KIVI attention approximates float attention better than per-token K") {
  std::mt19937 rng(6);
  const int n = 100;
  const auto k = random_rows(n, rng), v = constant_rows(n, rng), q = small_query(rng);
  const size_t row = kHeads * kHeadDim;
  auto run = [&](int bits, int G) {
    KvCache cache(1, n, kHeads, kHeadDim, bits, G);
    for (int p = 0; p < n; ++p) cache.store(0, p, &k[p * row], &v[p * row]);
    return attend_all(cache, 0, q.data(), n - 40, n);
  };
  const auto exact = run(32, 0);
  for (int G : {16, 32}) {
    CAPTURE(G);
    const float kivi4 = max_abs_diff(run(4, G), exact), token4 = max_abs_diff(run(4, 0), exact);
    const float kivi8 = max_abs_diff(run(8, G), exact);
    MESSAGE("max |out − float|: KIVI K4 " << kivi4 << ", per-token K4 " << token4 << ", KIVI K8 " << kivi8);
    CHECK(kivi4 < 0.7f * token4);
    CHECK(kivi8 < 0.25f * kivi4);
  }
}

TEST_CASE("kv cache: KIVI ranges past f16's saturate, so huge keys give finite attention") {
  std::mt19937 rng(9);
  const int n = 70, G = 32;  // two complete groups and six float positions
  auto k = random_rows(n, rng);
  for (float& x : k) x *= 1e5f;  // the large channel near 2e6, ranges far past 65504
  const auto v = constant_rows(n, rng), q = small_query(rng);
  const size_t row = kHeads * kHeadDim;
  for (int bits : {4, 8}) {
    CAPTURE(bits);
    KvCache cache(1, n, kHeads, kHeadDim, bits, G);
    for (int p = 0; p < n; ++p) cache.store(0, p, &k[p * row], &v[p * row]);
    const auto out = attend_all(cache, 0, q.data(), G, n);
    CHECK(std::all_of(out.begin(), out.end(), [](float f) { return std::isfinite(f); }));
  }
}

TEST_CASE("kv cache: a layer's storage grows as positions arrive and keeps what it held") {
  // A layer starts with room for 256 positions and doubles (in whole K groups) up to ctx; the
  // attention over the first positions must not change when the storage under them moves.
  std::mt19937 rng(9);
  const int ctx = 1000;
  const auto k = random_rows(ctx, rng), v = random_rows(ctx, rng), q = small_query(rng);
  const size_t row = kHeads * kHeadDim;
  // Over the first 48, 96 and 144 positions of each layer: whole groups of every size below (a
  // KIVI cache keeps float rows only for its newest group).
  const auto early = [&](const KvCache& cache) {
    std::vector<float> out;
    for (int l = 0; l < kLayers; ++l)
      for (int n = 48; n <= 144; n += 48) {
        const auto a = attend_all(cache, l, q.data(), n, n);
        out.insert(out.end(), a.begin(), a.end());
      }
    return out;
  };
  for (int bits : {4, 8, 32})
    for (int G : {0, 16, 48}) {
      if (bits == 32 && G) continue;  // a float cache has no K groups
      CAPTURE(bits); CAPTURE(G);
      KvCache cache(kLayers, ctx, kHeads, kHeadDim, bits, G, 0);  // 0: it grows however small
      for (int p = 0; p < 150; ++p)
        for (int l = 0; l < kLayers; ++l) cache.store(l, p, &k[p * row], &v[p * row]);
      const auto before = early(cache);
      for (int l = 0; l < kLayers; ++l) CHECK(cache.room(l) == (G == 48 ? 288 : 256));
      for (int p = 150; p < ctx; ++p)  // growing past 256 (288 for G 48), 512 (576) to 1000
        for (int l = 0; l < kLayers; ++l) cache.store(l, p, &k[p * row], &v[p * row]);
      for (int l = 0; l < kLayers; ++l) CHECK(cache.room(l) == ctx);
      CHECK(max_abs_diff(early(cache), before) == 0.0f);
      // The newest position: read where the last growth put it.
      const auto last = attend_all(cache, 0, q.data(), ctx, ctx);
      for (float f : last) CHECK(std::isfinite(f));
      CHECK_THROWS_AS(cache.store(0, ctx, &k[0], &v[0]), Error);  // past the context
    }
}

TEST_CASE("kv cache: layers grow at different tokens, and a reserve grows them all at once") {
  // Growing every layer at one token stalled that token for the whole cache's new pages.
  const int layers = 32, ctx = 4096;
  KvCache cache(layers, ctx, 1, 8, 4, 32, 0);  // 0: it grows however small
  const std::vector<float> k(8, 0.5f), v(8, -0.5f);
  std::set<int> growth_positions;
  std::vector<int> doublings(layers, 0);
  for (int p = 0; p < ctx; ++p)
    for (int l = 0; l < layers; ++l) {
      const int before = cache.room(l);
      cache.store(l, p, k.data(), v.data());
      CHECK(cache.room(l) > p);
      if (before && cache.room(l) != before) {
        CHECK(cache.room(l) == std::min(ctx, 2 * before));
        growth_positions.insert(p);
        ++doublings[l];
      }
    }
  for (int l = 0; l < layers; ++l) CHECK(doublings[l] == 4);  // 256 → 512 → … → 4096
  CHECK(growth_positions.size() == static_cast<size_t>(4 * layers));  // never two at one token

  KvCache reserved(layers, ctx, 1, 8, 4, 32, 0);
  reserved.reserve(600);  // a 600-token prompt: one allocation per layer, the next doubling up
  for (int l = 0; l < layers; ++l) CHECK(reserved.room(l) == 1024);
  CHECK_THROWS_AS(reserved.reserve(ctx + 1), Error);
}

TEST_CASE("kv cache: a cache of at most whole_bytes has room for the whole context at once") {
  // 2 layers × 1000 positions × 2 heads, 4-bit, head size 16: 8 code bytes and 4 of V's range
  // per position and head, K the same per token or 8 + 4·16/16 in groups of 16: 96,000 bytes.
  const int ctx = 1000;
  const std::vector<float> k(32, 0.5f), v(32, -0.5f);
  for (int G : {0, 16})
    for (size_t whole : {size_t{96000}, size_t{95999}}) {
      CAPTURE(G); CAPTURE(whole);
      KvCache cache(2, ctx, 2, 16, 4, G, whole);
      CHECK(cache.room(0) == 0);  // nothing before the first store
      cache.store(0, 0, k.data(), v.data());
      CHECK(cache.room(0) == (whole == 96000 ? ctx : 256));
      CHECK(cache.room(1) == 0);  // a layer's room comes with its own first store
    }
  // The default: stories260K's cache (5 layers, 512 positions, 4 KV heads of 8) is whole,
  // LLaMA-2-7B's at 4096 positions (~620 MB) grows.
  KvCache small(5, 512, 4, 8, 4, 32);
  small.store(0, 0, k.data(), v.data());
  CHECK(small.room(0) == 512);
  KvCache large(32, 4096, 32, 128, 4, 32);
  std::vector<float> row(32 * 128, 0.5f);
  large.store(0, 0, row.data(), row.data());
  CHECK(large.room(0) == 256);
}

TEST_CASE("kv cache: a rewind into a complete K group, then the same tokens, matches a fresh run") {
  auto model = load_model(llama2c_path("stories260K"));
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> id(1, model->config.vocab_size - 1);
  std::vector<int> tokens(60);
  for (int& t : tokens) t = id(rng);
  const size_t V = model->config.vocab_size;
  std::vector<float> exact, want;
  Session(*model, 128).prefill(tokens, &exact);
  model->quantized = true;  // a 4-bit KIVI cache over the float weights
  model->recipe.kv_bits = 4;
  model->recipe.kv_k_group = 16;
  Session(*model, 128).prefill(tokens, &want);

  for (int keep : {40, 32, 5}) {  // inside a complete group, at a group end, inside group 0
    CAPTURE(keep);
    Session s(*model, 128);
    s.prefill(tokens);
    s.rewind(keep);
    float diff = 0.0f, cache_error = 0.0f;
    for (int p = keep; p < 60; ++p) {
      const float* got = s.decode(tokens[p]);
      for (size_t i = 0; i < V; ++i) {
        diff = std::max(diff, std::fabs(got[i] - want[p * V + i]));
        cache_error = std::max(cache_error, std::fabs(want[p * V + i] - exact[p * V + i]));
      }
    }
    MESSAGE("max |logit − fresh| " << diff << "; fresh 4-bit against float cache " << cache_error);
    // Nothing was rounded twice: only the decode path's float rounding, which now and then
    // moves a stored range across an f16 rounding step (~1e-3 of a value near 1).
    if (keep % 16 == 0)
      CHECK(diff <= 1e-3f);
    else  // the kept rows of the group were rounded once more: at most the whole cache's error
      CHECK(diff <= cache_error);
  }
}

TEST_CASE("kv cache: a stored V is its f16 range's nearest code, at 4 bits clipped to 0.9") {
  // Attention over one position returns that position's V as stored: scale·code + min.
  std::mt19937 rng(8);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int bits : {4, 8})
    for (int hd : {8, 14, 128})
      for (int mode = 0; mode < 3; ++mode) {  // random with an outlier; constant; evenly spaced
        CAPTURE(bits);
        CAPTURE(hd);
        CAPTURE(mode);
        std::vector<float> k(hd, 1.0f), v(hd), q(hd, 0.5f), scores(1), out(hd);
        for (int c = 0; c < hd; ++c)
          v[c] = mode == 1   ? 0.75f
                 : mode == 2 ? 0.5f * c - 1.0f
                             : normal(rng) * (c == 3 ? 30.0f : 1.0f);
        KvCache cache(1, 4, 1, hd, bits, 0);
        cache.store(0, 0, k.data(), v.data());
        cache.attend(0, 0, q.data(), 1, 1, scores.data(), out.data());
        // The reference, in the same float operations, but for AVX-512's rounding of the weight
        // to 14 bits (v_weights.h; at 64 bytes a row and more): at one position that is float
        // rounding of its terms.
        float lo = *std::min_element(v.begin(), v.end());
        float hi = *std::max_element(v.begin(), v.end());
        const float clip = bits == 4 ? 0.9f : 1.0f, mid = 0.5f * (lo + hi);
        lo = mid + (lo - mid) * clip;
        hi = mid + (hi - mid) * clip;
        const int levels = (1 << bits) - 1;
        // The scale and minimum as the cache keeps them, in f16; the codes are against those.
        const float scale = f16_to_f32(f32_to_f16(hi > lo ? (hi - lo) / levels : 1.0f));
        lo = f16_to_f32(f32_to_f16(lo));
        for (int c = 0; c < hd; ++c) {
          const int code =
              std::clamp(static_cast<int>(std::nearbyint((v[c] - lo) / scale)), 0, levels);
          CHECK(out[c] == doctest::Approx(scale * code + lo)
                              .epsilon(1e-6)
                              .scale(1.0 + std::fabs(scale * code) + std::fabs(lo)));
        }
      }
}

TEST_CASE("kv cache: rejects a group or head size the kernels cannot walk") {
  auto message = [](int head_dim, int bits, int group) {
    try {
      KvCache cache(1, 64, 1, head_dim, bits, group);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(message(8, 4, 24) == "K cache group of 24 positions is not a multiple of 16");
  CHECK(message(6, 4, 32) == "K cache groups need a head size that is a multiple of 4, not 6");
  CHECK(message(6, 8, 32) == "no error");  // pairs of channels at 8 bits
  CHECK(message(6, 4, 0) == "no error");   // K per token: any even head size
  // Integer sums of q'·code over more than 256 channels could overflow, in either layout.
  for (int group : {0, 32})
    CHECK(message(512, 8, group) ==
          "a quantized K/V cache needs a head size of at most 256, not 512");
  CHECK(message(256, 8, 0) == "no error");
  CHECK(message(512, 32, 0) == "no error");  // a float cache sums in float
}
