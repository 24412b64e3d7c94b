// Attention over the 4- or 8-bit K/V cache (KvView, kernels.h) written once over the vector
// operations S of an x86 file (avx2.cpp: 8 lanes, avx512.cpp: 16). It vectorizes the scalar
// sums over the head dimension (another summation order, so equal within float rounding).
// Internal linkage: each ISA's copy keeps its flags.
//
// S: using V, Mask; W (lanes); zero, set1, load, store, add, sub, mul, fma(a, b, c) = a·b + c,
// exp; reduce_add, reduce_max over the lanes; first(n), the first n lanes (none for n ≤ 0, all
// for n ≥ W); load_part (other lanes 0), store_part, keep (other lanes 0), max_part(acc, p, m)
// (other lanes keep acc): the masked forms touch no memory outside the mask; widen(p, n): W code
// bytes from p as int32 lanes, only the first n read when n < W (the rest 0); to_float,
// low_nibbles, high_nibbles on those; index(p), W int32 lanes from aligned p, and
// permute(v, index); kivi_scores, the ISA's version (kv_kernels.h).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "engine/kernels/kernels.h"
#include "engine/kernels/x86_tiles.h"
#include "engine/scratch.h"

namespace rotor {
namespace {

// A cache row's codes go W bytes at a time: W elements with 8-bit codes; 2W with 4-bit codes,
// the even elements in the low nibbles, the odd ones in the high nibbles. The sums run in that
// order, over q and out rearranged to match once per call, so no nibbles need interleaving.
template <class S, int Bits>
struct CodeGroups {
  static constexpr int kVecs = Bits == 8 ? 1 : 2;  // float vectors per group
  // The vectors of group g, whose valid bytes end at n_bytes.
  static void load(const uint8_t* codes, int g, int n_bytes, typename S::V (&v)[kVecs]) {
    const auto bytes = S::widen(codes + S::W * g, n_bytes - S::W * g);
    if constexpr (Bits == 8) {
      v[0] = S::to_float(bytes);
    } else {
      v[0] = S::to_float(S::low_nibbles(bytes));
      v[1] = S::to_float(S::high_nibbles(bytes));
    }
  }
  // Where element i sits in that order.
  static int slot(int i) {
    if constexpr (Bits == 8) {
      return i;
    } else {
      const int m = i / 2;
      return (m / S::W * 2 + i % 2) * S::W + m % S::W;
    }
  }
};

// A long cache streams from memory: the rows kPrefetchBytes ahead are asked for.
constexpr int kPrefetchBytes = 2048;

inline void prefetch_ahead(const uint8_t* p) {
  _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetchBytes), _MM_HINT_T0);
}

// Σ_t weight_t·codes_t into og (the group order), a row at a time, with the sums in registers
// over as many of the row's W-byte groups at a time as they allow.
template <class S, class G>
void row_v_sums(const uint8_t* codes, int n_bytes, const float* weights, int n_pos, float* og) {
  const int groups = (n_bytes + S::W - 1) / S::W;
  constexpr int kPassGroups = 8 / G::kVecs;
  for (int g0 = 0; g0 < groups; g0 += kPassGroups) {
    const int n_groups = std::min(kPassGroups, groups - g0);
    // The pass's bytes of each row: one pointer, constant offsets (fewer registers in the loop).
    const int rest = n_bytes - g0 * S::W, pass_bytes = std::min(rest, kPassGroups * S::W);
    typename S::V acc[kPassGroups * G::kVecs];
    unrolled<kPassGroups * G::kVecs>([&](auto j) { acc[j] = S::zero(); });
    for (int u = 0; u < n_pos; ++u) {
      const typename S::V weight = S::set1(weights[u]);
      const uint8_t* v = codes + static_cast<size_t>(u) * n_bytes + g0 * S::W;
      for (int b = 0; b < pass_bytes; b += 64) prefetch_ahead(v + b);
      unrolled<kPassGroups>([&](auto g) {
        if (g >= n_groups) return;
        typename S::V c[G::kVecs];
        G::load(v, g, rest, c);
        unrolled<G::kVecs>([&](auto j) {
          acc[g * G::kVecs + j] = S::fma(weight, c[j], acc[g * G::kVecs + j]);
        });
      });
    }
    unrolled<kPassGroups * G::kVecs>([&](auto j) {
      if (j < n_groups * G::kVecs) S::store(og + (g0 * G::kVecs + j) * S::W, acc[j]);
    });
  }
}

// The same sum for rows of fewer than W bytes that divide W (tiny heads: a row would fill part
// of a vector): each W-byte load holds the rows of W / n_bytes positions, each lane weighted by
// its own position's weight, and the lanes of a byte fold together at the end. n_bytes divides
// the power of two W, so it is one too.
template <class S, class G>
void packed_v_sums(const uint8_t* codes, int n_bytes, const float* weights, int n_pos, float* og) {
  using V = typename S::V;
  const int per_load = S::W / n_bytes, shift = __builtin_ctz(n_bytes);
  alignas(sizeof(V)) int32_t lane_of[S::W];  // the index vectors, refilled for each use
  for (int b = 0; b < S::W; ++b) lane_of[b] = b >> shift;  // a lane's position within its load
  const auto spread = S::index(lane_of);
  // Independent sums (one chain would wait on each FMA's latency), as named registers: an
  // array of them indexed from a lambda stayed in memory.
  V a0[G::kVecs], a1[G::kVecs], a2[G::kVecs], a3[G::kVecs];
  for (int j = 0; j < G::kVecs; ++j) a0[j] = a1[j] = a2[j] = a3[j] = S::zero();
  // The load of positions [u, u + per_load) ∩ [0, n_pos) into acc.
  auto add = [&](int u, V(&acc)[G::kVecs]) __attribute__((always_inline)) {
    const V w = S::permute(S::load_part(weights + u, S::first(n_pos - u)), spread);
    V c[G::kVecs];
    G::load(codes + static_cast<size_t>(u) * n_bytes, 0, (n_pos - u) * n_bytes, c);
    for (int j = 0; j < G::kVecs; ++j) acc[j] = S::fma(w, c[j], acc[j]);
  };
  int u = 0;
  for (; u + 4 * per_load <= n_pos; u += 4 * per_load) {
    add(u, a0);
    add(u + per_load, a1);
    add(u + 2 * per_load, a2);
    add(u + 3 * per_load, a3);
  }
  for (; u < n_pos; u += per_load) add(u, a0);
  V sum[G::kVecs];
  for (int j = 0; j < G::kVecs; ++j) sum[j] = S::add(S::add(a0[j], a1[j]), S::add(a2[j], a3[j]));
  // Lane b ← Σ_p lane b + p·n_bytes: add the upper half onto the lower, halving down to n_bytes.
  for (int half = S::W / 2; half >= n_bytes; half /= 2) {
    for (int b = 0; b < S::W; ++b) lane_of[b] = (b + half) % S::W;
    const auto rotate = S::index(lane_of);
    for (int j = 0; j < G::kVecs; ++j) sum[j] = S::add(sum[j], S::permute(sum[j], rotate));
  }
  for (int j = 0; j < G::kVecs; ++j) S::store_part(og + j * S::W, S::first(n_bytes), sum[j]);
}

template <class S, int Bits>
void attend_vec(const KvView& kv, const float* q, int n_pos, float* scores, float* out) {
  using V = typename S::V;
  using G = CodeGroups<S, Bits>;
  const int hd = kv.head_dim, n_bytes = kv.head_bytes(), groups = (n_bytes + S::W - 1) / S::W;
  const int lanes = groups * G::kVecs * S::W;
  thread_local std::vector<float> buf;
  float* qg = scratch(buf, 2 * static_cast<size_t>(lanes));  // q and out in the group order
  std::fill_n(qg, 2 * lanes, 0.0f);
  float* og = qg + lanes;
  for (int i = 0; i < hd; ++i) qg[G::slot(i)] = q[i];
  const float inv_sqrt = 1.0f / std::sqrt(static_cast<float>(hd));
  float q_sum = 0.0f;
  for (int i = 0; i < hd; ++i) q_sum += q[i];
  if (kv.k_group) {
    S::kivi_scores(kv, q, n_pos, scores);
  } else {
    for (int t = 0; t < n_pos; ++t) {
      const uint8_t* k = kv.k_codes + static_cast<size_t>(t) * n_bytes;
      for (int b = 0; b < n_bytes; b += 64) prefetch_ahead(k + b);
      // Two sums, even and odd groups, to halve the chain of dependent FMAs.
      V dot[2] = {S::zero(), S::zero()};
      auto add_group = [&](int g, V& sum) {
        V c[G::kVecs];
        G::load(k, g, n_bytes, c);
        for (int v = 0; v < G::kVecs; ++v)
          sum = S::fma(S::load(qg + (g * G::kVecs + v) * S::W), c[v], sum);
      };
      int g = 0;
      for (; g + 2 <= groups; g += 2) {
        add_group(g, dot[0]);
        add_group(g + 1, dot[1]);
      }
      if (g < groups) add_group(g, dot[0]);
      const float dot_sum = S::reduce_add(S::add(dot[0], dot[1]));
      scores[t] = (kv.k_scale[t] * dot_sum + kv.k_min[t] * q_sum) * inv_sqrt;
    }
  }
  // Softmax numerators e_t = exp(score − max) in one pass that also makes scores the weights
  // e_t·v_scale_t of the V codes and sums e_t and e_t·v_min_t; out is normalized once at the end.
  V top = S::set1(scores[0]);
  for (int t = 0; t < n_pos; t += S::W) top = S::max_part(top, scores + t, S::first(n_pos - t));
  const V max_v = S::set1(S::reduce_max(top));
  V sum_v = S::zero(), min_v = S::zero();
  for (int t = 0; t < n_pos; t += S::W) {
    const auto m = S::first(n_pos - t);
    const V e = S::keep(S::exp(S::sub(S::load_part(scores + t, m), max_v)), m);
    sum_v = S::add(sum_v, e);
    min_v = S::fma(e, S::load_part(kv.v_min + t, m), min_v);
    S::store_part(scores + t, m, S::mul(e, S::load_part(kv.v_scale + t, m)));
  }
  const float inv_sum = 1.0f / S::reduce_add(sum_v);
  const float min_term = S::reduce_add(min_v);
  if (n_bytes < S::W && S::W % n_bytes == 0)
    packed_v_sums<S, G>(kv.v_codes, n_bytes, scores, n_pos, og);
  else
    row_v_sums<S, G>(kv.v_codes, n_bytes, scores, n_pos, og);
  for (int i = 0; i < hd; ++i) out[i] = (og[G::slot(i)] + min_term) * inv_sum;
}

template <class S>
void attend_simd(const KvView& kv, const float* q, int n_pos, float* scores, float* out) {
  if (kv.bits == 8)
    attend_vec<S, 8>(kv, q, n_pos, scores, out);
  else
    attend_vec<S, 4>(kv, q, n_pos, scores, out);
}

}  // namespace
}  // namespace rotor
