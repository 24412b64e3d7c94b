// Attention over the 4- or 8-bit K/V cache (KvView, kernels.h) written once over the vector
// operations S of an x86 file (avx2.cpp: 8 lanes, avx512.cpp: 16): the ISA's K scores
// (kv_kernels.h), then the softmax and the V sums. In float, it vectorizes the scalar sums over
// the head dimension (another summation order, so equal within float rounding), and the query
// heads of one KV head go up to four at a time through each walk over the V cache, so each
// code is loaded and converted once for all of them. With byte dots (S::kByteDots), rows of 4W
// bytes or more go by integer dots instead, a head at a time, with the weights rounded to 14
// bits (v_weights.h: within a bound of the float sums).
// Internal linkage: each ISA's copy keeps its flags.
//
// S: using V, Mask; W (lanes); zero, set1, load, store, add, sub, mul, max, fma(a, b, c) =
// a·b + c, exp; reduce_add, reduce_max over the lanes; first(n), the first n lanes (none for
// n ≤ 0, all for n ≥ W); load_part (other lanes 0), store_part, keep (other lanes 0),
// max_part(acc, p, m) (other lanes keep acc): the masked forms touch no memory outside the
// mask; widen(p, n): W code bytes from p as int32 lanes, only the first n read when n < W (the
// rest 0); to_float, low_nibbles, high_nibbles on those; index(p), W int32 lanes from aligned
// p, and permute(v, index); token_scores and kivi_scores, the ISA's versions (kv_kernels.h).
// With kByteDots: using I; zero_bytes; row_bytes(p, n), 4W bytes (the first n when n < 4W,
// the rest 0); weight_bytes(p), the 4 bytes at p in every int32 lane; transpose4 (see
// ByteDotOrder); low_codes and high_codes, the nibbles of each byte; byte_dot(acc, codes,
// weights), acc plus the dot of each lane's 4 unsigned code bytes with its 4 signed weight
// bytes; halves_to_float(hi, lo) = 128·hi + lo as floats.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "engine/kernels/kernels.h"
#include "engine/kernels/v_weights.h"
#include "engine/kernels/x86_tiles.h"
#include "engine/scratch.h"

namespace rotor {
namespace {

// A cache row's codes go W bytes at a time: W elements with 8-bit codes; 2W with 4-bit codes,
// the even elements in the low nibbles, the odd ones in the high nibbles. The V sums run in
// that order, into out rearranged back once per call, so no nibbles need interleaving.
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

// Σ_t weight_t·codes_t into og (the group order) for H heads (weights of head h from
// weights + h·w_stride, its sums to og + h·og_stride), a row at a time, with the sums in
// registers over as many of the row's W-byte groups at a time as they allow; the heads share
// each group's conversion.
template <class S, class G, int H>
void row_v_sums(const uint8_t* codes, int n_bytes, const float* weights, size_t w_stride,
                int n_pos, float* og, size_t og_stride) {
  const int groups = (n_bytes + S::W - 1) / S::W;
  constexpr int kPassGroups = std::max(1, 8 / (G::kVecs * H));  // 8 sums (more for H = 4)
  for (int g0 = 0; g0 < groups; g0 += kPassGroups) {
    const int n_groups = std::min(kPassGroups, groups - g0);
    // The pass's bytes of each row: one pointer, constant offsets (fewer registers in the loop).
    const int rest = n_bytes - g0 * S::W, pass_bytes = std::min(rest, kPassGroups * S::W);
    typename S::V acc[H][kPassGroups * G::kVecs];
    unrolled<H>([&](auto h) {
      unrolled<kPassGroups * G::kVecs>([&](auto j) { acc[h][j] = S::zero(); });
    });
    for (int u = 0; u < n_pos; ++u) {
      typename S::V weight[H];
      unrolled<H>([&](auto h) { weight[h] = S::set1(weights[h * w_stride + u]); });
      const uint8_t* v = codes + static_cast<size_t>(u) * n_bytes + g0 * S::W;
      for (int b = 0; b < pass_bytes; b += 64) prefetch_ahead(v + b);
      unrolled<kPassGroups>([&](auto g) {
        if (g >= n_groups) return;
        typename S::V c[G::kVecs];
        G::load(v, g, rest, c);
        unrolled<H>([&](auto h) {
          unrolled<G::kVecs>([&](auto j) {
            acc[h][g * G::kVecs + j] = S::fma(weight[h], c[j], acc[h][g * G::kVecs + j]);
          });
        });
      });
    }
    unrolled<H>([&](auto h) {
      unrolled<kPassGroups * G::kVecs>([&](auto j) {
        if (j < n_groups * G::kVecs)
          S::store(og + h * og_stride + (g0 * G::kVecs + j) * S::W, acc[h][j]);
      });
    });
  }
}

// The same sums for rows of fewer than W bytes that divide W (tiny heads: a row would fill part
// of a vector): each W-byte load holds the rows of W / n_bytes positions, each lane weighted by
// its own position's weight, and the lanes of a byte fold together at the end. n_bytes divides
// the power of two W, so it is one too.
template <class S, class G, int H>
void packed_v_sums(const uint8_t* codes, int n_bytes, const float* weights, size_t w_stride,
                   int n_pos, float* og, size_t og_stride) {
  using V = typename S::V;
  const int per_load = S::W / n_bytes, shift = __builtin_ctz(n_bytes);
  alignas(sizeof(V)) int32_t lane_of[S::W];  // the index vectors, refilled for each use
  for (int b = 0; b < S::W; ++b) lane_of[b] = b >> shift;  // a lane's position within its load
  const auto spread = S::index(lane_of);
  // Independent sums per head: one chain would wait on each FMA's latency.
  constexpr int kChains = std::max(1, 4 / H);
  V acc[H][kChains][G::kVecs];
  unrolled<H>([&](auto h) {
    unrolled<kChains>([&](auto k) {
      unrolled<G::kVecs>([&](auto j) { acc[h][k][j] = S::zero(); });
    });
  });
  // The load of positions [u, u + per_load) ∩ [0, n_pos) into chain k of every head.
  auto add = [&](int u, auto k) __attribute__((always_inline)) {
    V c[G::kVecs];
    G::load(codes + static_cast<size_t>(u) * n_bytes, 0, (n_pos - u) * n_bytes, c);
    const auto m = S::first(n_pos - u);
    unrolled<H>([&](auto h) {
      const V w = S::permute(S::load_part(weights + h * w_stride + u, m), spread);
      unrolled<G::kVecs>([&](auto j) { acc[h][k][j] = S::fma(w, c[j], acc[h][k][j]); });
    });
  };
  int u = 0;
  for (; u + kChains * per_load <= n_pos; u += kChains * per_load)
    unrolled<kChains>([&](auto k) { add(u + k * per_load, k); });
  for (; u < n_pos; u += per_load) add(u, std::integral_constant<int, 0>{});
  V sum[H][G::kVecs];
  unrolled<H>([&](auto h) {
    unrolled<G::kVecs>([&](auto j) {
      sum[h][j] = acc[h][0][j];
      unrolled<kChains - 1>([&](auto k) { sum[h][j] = S::add(sum[h][j], acc[h][k + 1][j]); });
    });
  });
  // Lane b ← Σ_p lane b + p·n_bytes: add the upper half onto the lower, halving down to n_bytes.
  for (int half = S::W / 2; half >= n_bytes; half /= 2) {
    for (int b = 0; b < S::W; ++b) lane_of[b] = (b + half) % S::W;
    const auto rotate = S::index(lane_of);
    unrolled<H>([&](auto h) {
      unrolled<G::kVecs>([&](auto j) {
        sum[h][j] = S::add(sum[h][j], S::permute(sum[h][j], rotate));
      });
    });
  }
  unrolled<H>([&](auto h) {
    unrolled<G::kVecs>([&](auto j) {
      S::store_part(og + h * og_stride + j * S::W, S::first(n_bytes), sum[h][j]);
    });
  });
}

// The V sums of one head by integer dots, for ISAs with unsigned × signed byte dots
// (S::kByteDots): weights in 14-bit halves per chunk of positions (v_weights.h), so a chunk's
// sums are exact int32 and meet the float sums once per chunk, by its step. Four positions go
// at a time: 4W bytes of each of their rows, transposed so that each int32 lane holds one byte
// of the four rows, whose dots with the four positions' weight bytes (broadcast) are one
// instruction per lane. A 4-bit code then costs a quarter of a byte dot per half, against a
// conversion and a multiply-add in float.
template <class S, int Bits>
struct ByteDotOrder {
  static constexpr int kCodes = Bits == 8 ? 1 : 2;  // code vectors per transposed vector
  static constexpr int kPass = Bits == 8 ? 2 : 1;   // 4W-byte pieces of a row per pass: 16 sums
  static constexpr int kBytes = 4 * S::W;
  // Floats of og per piece: 4 transposed vectors, each kCodes vectors of W sums.
  static constexpr int kLanes = 4 * kCodes * S::W;
  // Where element i sits: lane 4k + j of transposed vector m holds byte 16k + 4m + j of a
  // piece (the unpacks work within 128-bit lanes), its low nibble before its high one.
  static int slot(int i) {
    const int b = Bits == 8 ? i : i / 2, nibble = Bits == 8 ? 0 : i % 2;
    const int r = b % kBytes;
    return b / kBytes * kLanes + (r % 16 / 4 * kCodes + nibble) * S::W + r / 16 * 4 + r % 4;
  }
};

template <class S, int Bits>
void byte_dot_v_sums(const uint8_t* codes, int n_bytes, const int8_t* hi, const int8_t* lo,
                     const float* steps, int n_pos, float* og) {
  using O = ByteDotOrder<S, Bits>;
  using I = typename S::I;
  const int pieces = (n_bytes + O::kBytes - 1) / O::kBytes;
  std::fill(og, og + static_cast<size_t>(pieces) * O::kLanes, 0.0f);
  for (int p0 = 0; p0 < pieces; p0 += O::kPass) {
    const int n_pass = std::min(O::kPass, pieces - p0);
    for (int c0 = 0; c0 < n_pos; c0 += kVChunk) {
      const int c1 = std::min(n_pos, c0 + kVChunk);
      I acc[O::kPass][4][O::kCodes][2];  // [piece][transposed vector][nibble][hi, lo]
      unrolled<O::kPass * 4 * O::kCodes * 2>(
          [&](auto j) { (&acc[0][0][0][0])[j] = S::zero_bytes(); });
      // Positions [u, u + 4); rows from n_pos on are not read (full: all four are there).
      auto add = [&](int u, auto full) __attribute__((always_inline)) {
        const I weight[2] = {S::weight_bytes(hi + u), S::weight_bytes(lo + u)};
        unrolled<O::kPass>([&](auto p) {
          if (p >= n_pass) return;
          const int offset = (p0 + p) * O::kBytes;
          I rows[4];
          unrolled<4>([&](auto i) {
            const uint8_t* row = codes + static_cast<size_t>(u + i) * n_bytes + offset;
            if (decltype(full)::value || u + i < n_pos) {
              prefetch_ahead(row);
              rows[i] = S::row_bytes(row, n_bytes - offset);
            } else {
              rows[i] = S::zero_bytes();
            }
          });
          I t[4];
          S::transpose4(rows, t);
          unrolled<4>([&](auto m) {
            unrolled<O::kCodes>([&](auto nibble) {
              const I c = Bits == 8     ? t[m]
                          : nibble == 0 ? S::low_codes(t[m])
                                        : S::high_codes(t[m]);
              unrolled<2>([&](auto half) {
                acc[p][m][nibble][half] = S::byte_dot(acc[p][m][nibble][half], c, weight[half]);
              });
            });
          });
        });
      };
      int u = c0;
      for (; u + 4 <= c1; u += 4) add(u, std::true_type{});
      if (u < c1) add(u, std::false_type{});
      const auto step = S::set1(steps[c0 / kVChunk]);
      unrolled<O::kPass>([&](auto p) {
        if (p >= n_pass) return;
        unrolled<4 * O::kCodes>([&](auto j) {
          float* o = og + (p0 + p) * O::kLanes + j * S::W;
          const I* sums = acc[p][j / O::kCodes][j % O::kCodes];
          S::store(o, S::fma(step, S::halves_to_float(sums[0], sums[1]), S::load(o)));
        });
      });
    }
  }
}

// n f16 values from p widened to floats; for n < W the other lanes are 0 and nothing past
// p + n is read.
template <class S>
typename S::V load_f16_first(const uint16_t* p, int n) {
  if (n >= S::W) return S::load_f16(p);
  uint16_t part[S::W] = {};
  std::copy_n(p, n, part);
  return S::load_f16(part);
}

// Softmax numerators e_t = exp(score − max) of H heads (scores of head h from scores +
// h·n_pos) in one pass that also makes scores the weights e_t·v_scale_t of the V codes and sums
// e_t and e_t·v_min_t: sets inv_sum[h] = 1 / Σ e_t and min_term[h] = Σ e_t·v_min_t (out is
// normalized once at the end), and with Steps the weights' steps for the byte dots
// (v_weights.h) from steps + h·v_chunks(n_pos) on. The heads go side by side, so their
// exponentials' dependent chains overlap and each V scale and minimum is loaded once for all
// of them.
template <class S, int H, bool Steps>
void softmax_weights(const KvView& kv, float* scores, int n_pos, float* inv_sum,
                     float* min_term, float* steps) {
  using V = typename S::V;
  V top[H], sum_v[H], min_v[H], largest[H];
  unrolled<H>([&](auto h) { top[h] = S::set1(scores[h * n_pos]); });
  for (int t = 0; t < n_pos; t += S::W) {
    const auto m = S::first(n_pos - t);
    unrolled<H>([&](auto h) { top[h] = S::max_part(top[h], scores + h * n_pos + t, m); });
  }
  unrolled<H>([&](auto h) {
    top[h] = S::set1(S::reduce_max(top[h]));
    sum_v[h] = min_v[h] = largest[h] = S::zero();
  });
  const int chunks = v_chunks(n_pos);
  for (int t = 0; t < n_pos; t += S::W) {
    const auto m = S::first(n_pos - t);
    const V v_min = load_f16_first<S>(kv.v_min + t, n_pos - t);
    const V v_scale = load_f16_first<S>(kv.v_scale + t, n_pos - t);
    unrolled<H>([&](auto h) {
      float* s = scores + h * n_pos + t;
      const V e = S::keep(S::exp(S::sub(S::load_part(s, m), top[h])), m);
      const V w = S::mul(e, v_scale);
      sum_v[h] = S::add(sum_v[h], e);
      min_v[h] = S::fma(e, v_min, min_v[h]);
      if constexpr (Steps) largest[h] = S::max(largest[h], w);
      S::store_part(s, m, w);
    });
    // A chunk ends (kVChunk is a multiple of W).
    if (Steps && ((t + S::W) % kVChunk == 0 || t + S::W >= n_pos))
      unrolled<H>([&](auto h) {
        steps[h * chunks + t / kVChunk] = v_step(S::reduce_max(largest[h]));
        largest[h] = S::zero();
      });
  }
  unrolled<H>([&](auto h) {
    min_term[h] = S::reduce_add(min_v[h]);
    inv_sum[h] = 1.0f / S::reduce_add(sum_v[h]);
  });
}

template <class S, int Bits>
void attend_vec(const KvView& kv, const float* q, int n_q, int n_pos, float* scores, float* out) {
  using G = CodeGroups<S, Bits>;
  using O = ByteDotOrder<S, Bits>;
  const int hd = kv.head_dim, n_bytes = kv.head_bytes();
  // Byte dots for rows of at least 4W bytes (shorter ones would leave part of each vector
  // empty; those go in float).
  const bool byte_dots = S::kByteDots && n_bytes >= 4 * S::W;
  const int lanes = byte_dots ? (n_bytes + O::kBytes - 1) / O::kBytes * O::kLanes
                              : (n_bytes + S::W - 1) / S::W * G::kVecs * S::W;
  const size_t heads_lanes = static_cast<size_t>(n_q) * lanes;
  thread_local std::vector<float> buf;
  thread_local std::vector<int8_t> halves;
  // Per head: out in the group order, 1 / Σ e_t, Σ e_t·v_min_t and the weights' steps.
  const int chunks = v_chunks(n_pos);
  float* og = scratch(buf, heads_lanes + static_cast<size_t>(n_q) * (2 + chunks));
  float* inv_sum = og + heads_lanes;
  float* min_term = inv_sum + n_q;
  float* steps = min_term + n_q;
  if (kv.k_group)
    S::kivi_scores(kv, q, n_q, n_pos, scores);
  else
    S::token_scores(kv, q, n_q, n_pos, scores);
  head_chunks(n_q, [&](int h0, auto heads) {
    constexpr int H = decltype(heads)::value;
    float* s = scores + static_cast<size_t>(h0) * n_pos;
    if (byte_dots)
      softmax_weights<S, H, S::kByteDots>(kv, s, n_pos, inv_sum + h0, min_term + h0,
                                          steps + h0 * chunks);
    else
      softmax_weights<S, H, false>(kv, s, n_pos, inv_sum + h0, min_term + h0, nullptr);
  });
  if constexpr (S::kByteDots) {
    if (byte_dots) {
      const size_t padded = (static_cast<size_t>(n_pos) + 3) / 4 * 4;
      int8_t* hi = scratch(halves, 2 * padded);
      for (int h = 0; h < n_q; ++h) {
        const float* steps_h = steps + h * chunks;
        split_v_weights(scores + static_cast<size_t>(h) * n_pos, n_pos, steps_h, hi, hi + padded);
        byte_dot_v_sums<S, Bits>(kv.v_codes, n_bytes, hi, hi + padded, steps_h, n_pos,
                                 og + h * lanes);
      }
    }
  }
  if (!byte_dots) {
    head_chunks(n_q, [&](int h0, auto heads) {
      constexpr int H = decltype(heads)::value;
      const float* weights = scores + static_cast<size_t>(h0) * n_pos;
      if (n_bytes < S::W && S::W % n_bytes == 0)
        packed_v_sums<S, G, H>(kv.v_codes, n_bytes, weights, n_pos, n_pos, og + h0 * lanes,
                               lanes);
      else
        row_v_sums<S, G, H>(kv.v_codes, n_bytes, weights, n_pos, n_pos, og + h0 * lanes, lanes);
    });
  }
  auto finish = [&](auto slot) {
    for (int h = 0; h < n_q; ++h)
      for (int i = 0; i < hd; ++i)
        out[h * hd + i] = (og[h * lanes + slot(i)] + min_term[h]) * inv_sum[h];
  };
  if (byte_dots)
    finish(O::slot);
  else
    finish(G::slot);
}

template <class S>
void attend_simd(const KvView& kv, const float* q, int n_q, int n_pos, float* scores, float* out) {
  if (kv.bits == 8)
    attend_vec<S, 8>(kv, q, n_q, n_pos, scores, out);
  else
    attend_vec<S, 4>(kv, q, n_q, n_pos, scores, out);
}

}  // namespace
}  // namespace rotor
