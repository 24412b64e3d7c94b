// AArch64 Advanced SIMD kernels. Every AArch64 CPU has NEON; the dot-product extension
// (UDOT, Armv8.2 "dotprod") is optional and detected once at run time, so one binary uses it
// where present and falls back to widening multiply-accumulates elsewhere.
//
// Block dots use unsigned×unsigned products on both paths: the stored 4-bit nibble is w' + 8,
// and an 8-bit code flipped in its top bit is w' + 128, both in 0..255 like the activation
// codes q. Then Σ q·w' = Σ q·(w' + c) − c·Σ q, with Σ q per (token, block) computed once per
// call and shared by every row. All sums are exact integers (mod 2^32, like the scalar int32
// sums), so the results are bit-identical to the scalar reference.
#include <arm_neon.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/import/dtype.h"
#include "engine/kernels/f16_simd.h"

#if defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif

#include "engine/kernels/kernels.h"
#include "engine/kernels/kv_kernels.h"
#include "engine/kernels/pack.h"
#include "engine/kernels/token_walk.h"
#include "engine/scratch.h"

// Functions that use UDOT are compiled for it regardless of the baseline -march, and only
// called when the CPU reports it.
#if defined(__clang__)
#define ROTOR_DOTPROD __attribute__((target("dotprod")))
#else
// GCC 12 mis-handles the first function marked target("+dotprod") in a unit; a full arch
// string works everywhere. Any CPU with the dot-product extension implements Armv8.2-A.
#define ROTOR_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
#endif

// clang's arm_neon.h (before version 16 at least) declares the dot-product intrinsics only when
// the whole unit targets them; there UDOT is written as one instruction of inline assembly.
#if defined(__clang__) && !defined(__ARM_FEATURE_DOTPROD)
#define ROTOR_UDOT_ASM 1
#else
#define ROTOR_UDOT_ASM 0
#endif

namespace rotor {

namespace {

bool cpu_has_dotprod() {
#if defined(__ARM_FEATURE_DOTPROD)
  return true;  // the baseline already requires it
#elif defined(__linux__)
  return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#else
  return false;
#endif
}

bool use_dotprod() {
  static const bool has = cpu_has_dotprod();
  return has;
}

// ---------------------------------------------------------------------------------------------
// Block dots

// acc += per 32-bit lane, the sum of the 4 products of unsigned bytes a·b (UDOT).
ROTOR_DOTPROD inline uint32x4_t udot(uint32x4_t acc, uint8x16_t a, uint8x16_t b) {
#if ROTOR_UDOT_ASM
  __asm__("udot %0.4s, %1.16b, %2.16b" : "+w"(acc) : "w"(a), "w"(b));
  return acc;
#else
  return vdotq_u32(acc, a, b);
#endif
}

// Σ of n bytes.
inline uint32_t sum_bytes(const uint8_t* p, int n) {
  uint32x4_t acc = vdupq_n_u32(0);
  int j = 0;
  for (; j + 16 <= n; j += 16) acc = vpadalq_u16(acc, vpaddlq_u8(vld1q_u8(p + j)));
  uint32_t s = vaddvq_u32(acc);
  for (; j < n; ++j) s += p[j];
  return s;
}

// One token against R rows over the whole (padded) row, for blocks that are multiples of 32.
// w[r]: packed row; q: the token's codes; qsum[b]: Σ q over block b; out[r][b]: the dots.
// Columns are walked in whole 64-column chunks where the block allows (one weight load feeds
// both nibbles) and in 32-column halves otherwise (a block of 32, or an odd multiple of it).
template <int R>
ROTOR_DOTPROD void tile4_dotprod(const uint8_t* const* w, const uint8_t* q, int cols, int block,
                                 const uint32_t* qsum, int32_t* const* out) {
  const uint8x16_t low = vdupq_n_u8(0x0F);
  const int nb = cols / block;
  for (int b = 0; b < nb; ++b) {
    uint32x4_t acc[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) acc[r] = vdupq_n_u32(0);
    const int end = (b + 1) * block;
    for (int j = b * block; j < end;) {
      const size_t off = static_cast<size_t>(j / kChunk) * (kChunk / 2);
      if (j % kChunk == 0 && j + kChunk <= end) {
        const uint8x16_t q0 = vld1q_u8(q + j), q1 = vld1q_u8(q + j + 16);
        const uint8x16_t q2 = vld1q_u8(q + j + 32), q3 = vld1q_u8(q + j + 48);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          const uint8x16_t w0 = vld1q_u8(w[r] + off), w1 = vld1q_u8(w[r] + off + 16);
          acc[r] = udot(acc[r], vandq_u8(w0, low), q0);
          acc[r] = udot(acc[r], vandq_u8(w1, low), q1);
          acc[r] = udot(acc[r], vshrq_n_u8(w0, 4), q2);
          acc[r] = udot(acc[r], vshrq_n_u8(w1, 4), q3);
        }
        j += kChunk;
      } else {
        const uint8x16_t q0 = vld1q_u8(q + j), q1 = vld1q_u8(q + j + 16);
        const bool high = j % kChunk != 0;
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          const uint8x16_t w0 = vld1q_u8(w[r] + off), w1 = vld1q_u8(w[r] + off + 16);
          acc[r] = udot(acc[r], high ? vshrq_n_u8(w0, 4) : vandq_u8(w0, low), q0);
          acc[r] = udot(acc[r], high ? vshrq_n_u8(w1, 4) : vandq_u8(w1, low), q1);
        }
        j += kChunk / 2;
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) out[r][b] = static_cast<int32_t>(vaddvq_u32(acc[r]) - 8u * qsum[b]);
  }
}

template <int R>
ROTOR_DOTPROD void tile8_dotprod(const uint8_t* const* w, const uint8_t* q, int cols, int block,
                                 const uint32_t* qsum, int32_t* const* out) {
  const uint8x16_t flip = vdupq_n_u8(0x80);
  const int nb = cols / block;
  for (int b = 0; b < nb; ++b) {
    uint32x4_t acc[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) acc[r] = vdupq_n_u32(0);
    const int end = (b + 1) * block;
    int j = b * block;
    for (; j + 64 <= end; j += 64) {
      const uint8x16_t q0 = vld1q_u8(q + j), q1 = vld1q_u8(q + j + 16);
      const uint8x16_t q2 = vld1q_u8(q + j + 32), q3 = vld1q_u8(q + j + 48);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        acc[r] = udot(acc[r], veorq_u8(vld1q_u8(w[r] + j), flip), q0);
        acc[r] = udot(acc[r], veorq_u8(vld1q_u8(w[r] + j + 16), flip), q1);
        acc[r] = udot(acc[r], veorq_u8(vld1q_u8(w[r] + j + 32), flip), q2);
        acc[r] = udot(acc[r], veorq_u8(vld1q_u8(w[r] + j + 48), flip), q3);
      }
    }
    for (; j < end; j += 16) {
      const uint8x16_t q0 = vld1q_u8(q + j);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r)
        acc[r] = udot(acc[r], veorq_u8(vld1q_u8(w[r] + j), flip), q0);
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r)
      out[r][b] = static_cast<int32_t>(vaddvq_u32(acc[r]) - 128u * qsum[b]);
  }
}

// The same without UDOT: 8-bit × 8-bit widening multiplies into 16-bit lanes, then pairwise
// widening adds into 32-bit lanes. 4-bit: each product is at most 15·255 = 3825, so a lane
// takes the 8 products of one chunk (≤ 30600) before it is widened. 8-bit: a product is at
// most 255·255 = 65025 and is widened at once.
template <int R>
void tile4_plain(const uint8_t* const* w, const uint8_t* q, int cols, int block,
                 const uint32_t* qsum, int32_t* const* out) {
  const uint8x16_t low = vdupq_n_u8(0x0F);
  const int nb = cols / block;
  for (int b = 0; b < nb; ++b) {
    uint32x4_t acc[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) acc[r] = vdupq_n_u32(0);
    const int end = (b + 1) * block;
    for (int j = b * block; j < end;) {
      const size_t off = static_cast<size_t>(j / kChunk) * (kChunk / 2);
      if (j % kChunk == 0 && j + kChunk <= end) {
        const uint8x16_t q0 = vld1q_u8(q + j), q1 = vld1q_u8(q + j + 16);
        const uint8x16_t q2 = vld1q_u8(q + j + 32), q3 = vld1q_u8(q + j + 48);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          const uint8x16_t w0 = vld1q_u8(w[r] + off), w1 = vld1q_u8(w[r] + off + 16);
          const uint8x16_t l0 = vandq_u8(w0, low), l1 = vandq_u8(w1, low);
          const uint8x16_t h0 = vshrq_n_u8(w0, 4), h1 = vshrq_n_u8(w1, 4);
          uint16x8_t s = vmull_u8(vget_low_u8(l0), vget_low_u8(q0));
          s = vmlal_high_u8(s, l0, q0);
          s = vmlal_u8(s, vget_low_u8(l1), vget_low_u8(q1));
          s = vmlal_high_u8(s, l1, q1);
          s = vmlal_u8(s, vget_low_u8(h0), vget_low_u8(q2));
          s = vmlal_high_u8(s, h0, q2);
          s = vmlal_u8(s, vget_low_u8(h1), vget_low_u8(q3));
          s = vmlal_high_u8(s, h1, q3);
          acc[r] = vpadalq_u16(acc[r], s);
        }
        j += kChunk;
      } else {
        const uint8x16_t q0 = vld1q_u8(q + j), q1 = vld1q_u8(q + j + 16);
        const bool high = j % kChunk != 0;
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          const uint8x16_t w0 = vld1q_u8(w[r] + off), w1 = vld1q_u8(w[r] + off + 16);
          const uint8x16_t n0 = high ? vshrq_n_u8(w0, 4) : vandq_u8(w0, low);
          const uint8x16_t n1 = high ? vshrq_n_u8(w1, 4) : vandq_u8(w1, low);
          uint16x8_t s = vmull_u8(vget_low_u8(n0), vget_low_u8(q0));
          s = vmlal_high_u8(s, n0, q0);
          s = vmlal_u8(s, vget_low_u8(n1), vget_low_u8(q1));
          s = vmlal_high_u8(s, n1, q1);
          acc[r] = vpadalq_u16(acc[r], s);
        }
        j += kChunk / 2;
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) out[r][b] = static_cast<int32_t>(vaddvq_u32(acc[r]) - 8u * qsum[b]);
  }
}

template <int R>
void tile8_plain(const uint8_t* const* w, const uint8_t* q, int cols, int block,
                 const uint32_t* qsum, int32_t* const* out) {
  const uint8x16_t flip = vdupq_n_u8(0x80);
  const int nb = cols / block;
  for (int b = 0; b < nb; ++b) {
    uint32x4_t acc[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) acc[r] = vdupq_n_u32(0);
    const int end = (b + 1) * block;
    for (int j = b * block; j < end; j += 16) {
      const uint8x16_t q0 = vld1q_u8(q + j);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const uint8x16_t u = veorq_u8(vld1q_u8(w[r] + j), flip);
        acc[r] = vpadalq_u16(acc[r], vmull_u8(vget_low_u8(u), vget_low_u8(q0)));
        acc[r] = vpadalq_u16(acc[r], vmull_high_u8(u, q0));
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r)
      out[r][b] = static_cast<int32_t>(vaddvq_u32(acc[r]) - 128u * qsum[b]);
  }
}

using TileFn = void (*)(const uint8_t* const*, const uint8_t*, int, int, const uint32_t*,
                        int32_t* const*);

template <int R>
TileFn pick_tile(int bits, bool dotprod) {
  if (bits == 8) return dotprod ? tile8_dotprod<R> : tile8_plain<R>;
  return dotprod ? tile4_dotprod<R> : tile4_plain<R>;
}

// Blocks that are not a multiple of 32 (the tests use 8 and 16): one row and token at a time,
// signed 16-bit products per 8 columns, or the plain loop for blocks not a multiple of 8.
void block_dots_small(const PackedMatrix& w, const uint8_t* q, size_t q_stride, int n_tokens,
                      int r0, int r1, int32_t* dots) {
  const int nb = w.blocks();
  const int16x8_t eight = vdupq_n_s16(8);
  for (int t = 0; t < n_tokens; ++t) {
    const uint8_t* qt = q + t * q_stride;
    for (int r = r0; r < r1; ++r) {
      const uint8_t* row = w.codes + static_cast<size_t>(r) * w.row_bytes();
      int32_t* out = dots + (static_cast<size_t>(t) * (r1 - r0) + (r - r0)) * nb;
      for (int b = 0; b < nb; ++b) {
        const int begin = b * w.block, end = begin + w.block;
        if (w.block % 8 == 0) {
          int32x4_t acc = vdupq_n_s32(0);
          for (int j = begin; j < end; j += 8) {
            int16x8_t wv;
            if (w.bits == 8) {
              wv = vmovl_s8(vld1_s8(reinterpret_cast<const int8_t*>(row) + j));
            } else {
              const int i = j % kChunk;
              const uint8x8_t bytes = vld1_u8(row + (j / kChunk) * (kChunk / 2) + i % 32);
              const uint8x8_t nib = i < 32 ? vand_u8(bytes, vdup_n_u8(0x0F)) : vshr_n_u8(bytes, 4);
              wv = vsubq_s16(vreinterpretq_s16_u16(vmovl_u8(nib)), eight);
            }
            const int16x8_t qv = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(qt + j)));
            acc = vmlal_s16(acc, vget_low_s16(qv), vget_low_s16(wv));
            acc = vmlal_high_s16(acc, qv, wv);
          }
          out[b] = vaddvq_s32(acc);
        } else {
          int32_t acc = 0;
          for (int j = begin; j < end; ++j) {
            acc += qt[j] * packed_code(row, w.bits, j);
          }
          out[b] = acc;
        }
      }
    }
  }
}

void block_dots_neon(const PackedMatrix& w, const uint8_t* q, size_t q_stride, int n_tokens,
                     int r0, int r1, int32_t* dots) {
  if (w.block % 32 != 0) return block_dots_small(w, q, q_stride, n_tokens, r0, r1, dots);
  const int nb = w.blocks(), cols = w.cols_padded, rows = r1 - r0;
  // Σ q per (token, block): the correction of the unsigned weight offset. Reused storage, so
  // the decode path does not allocate after the first call on a thread.
  static thread_local std::vector<uint32_t> qsum_storage;
  uint32_t* qsum = scratch(qsum_storage, static_cast<size_t>(n_tokens) * nb);
  for (int t = 0; t < n_tokens; ++t)
    for (int b = 0; b < nb; ++b)
      qsum[static_cast<size_t>(t) * nb + b] = sum_bytes(q + t * q_stride + b * w.block, w.block);

  const bool dp = use_dotprod();
  const TileFn tile4 = pick_tile<4>(w.bits, dp), tile1 = pick_tile<1>(w.bits, dp);
  const size_t row_bytes = w.row_bytes();
  // Row tiles of 4 share every activation load; tokens inside, so a tile's rows stay in cache.
  int r = r0;
  for (; r + 4 <= r1; r += 4) {
    const uint8_t* wr[4];
    for (int i = 0; i < 4; ++i) wr[i] = w.codes + static_cast<size_t>(r + i) * row_bytes;
    for (int t = 0; t < n_tokens; ++t) {
      int32_t* out[4];
      for (int i = 0; i < 4; ++i)
        out[i] = dots + (static_cast<size_t>(t) * rows + (r + i - r0)) * nb;
      tile4(wr, q + t * q_stride, cols, w.block, &qsum[static_cast<size_t>(t) * nb], out);
    }
  }
  for (; r < r1; ++r) {
    const uint8_t* wr[1] = {w.codes + static_cast<size_t>(r) * row_bytes};
    for (int t = 0; t < n_tokens; ++t) {
      int32_t* out[1] = {dots + (static_cast<size_t>(t) * rows + (r - r0)) * nb};
      tile1(wr, q + t * q_stride, cols, w.block, &qsum[static_cast<size_t>(t) * nb], out);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Activation quantization: the min/max scan and the rounding vectorized, bit-identical to the
// scalar reference. The scale and zero point of a segment come from quantize_acts_scalar
// itself, run on the two values {min, max}: the scalar expression for them mixes products and
// a difference, which a compiler may or may not fuse into an FMA depending on the unit and its
// flags (GCC does on AArch64), so only the reference's own code is sure to round as it does.
// Min/max are exact (FMINNM/FMAXNM skip NaN as std::min/max do here; the sign of a zero bound
// may differ, which the reference's own min/max against 0 removes). The codes then need one
// product each, and FCVTNS rounds half to even exactly like nearbyint in the default mode.

// Scale and zero point of one segment whose values span [lo, hi] (lo ≤ 0 ≤ hi), clipped by
// `clip` (the segment's own pair: the reference runs here on a single segment).
struct SegmentParams {
  float scale;
  int zero;
};
SegmentParams segment_params(float lo, float hi, int bits, ActQuantParams::Clip clip) {
  thread_local QuantizedActs two = [] {
    QuantizedActs a;
    a.tokens = 1;
    a.cols_padded = a.segment = a.block = 2;
    a.q.resize(2);
    a.scale.resize(1);
    a.zero.resize(1);
    a.sums.resize(1);
    return a;
  }();
  const float x[2] = {lo, hi};
  quantize_acts_scalar(x, 2, 1, {bits, 2, 2, clip.min, clip.max}, two);
  return {two.scale[0], two.zero[0]};
}

void quantize_acts_neon(const float* x, int cols, int n_tokens, const ActQuantParams& p,
                        QuantizedActs& a) {
  const int levels = (1 << p.bits) - 1;
  const int seg = a.segment, nseg = a.cols_padded / seg, nblk = a.cols_padded / a.block;
  const int32x4_t vzero_floor = vdupq_n_s32(0), vlevels = vdupq_n_s32(levels);
  for (int t = 0; t < n_tokens; ++t) {
    const float* xt = x + static_cast<size_t>(t) * cols;
    uint8_t* qt = &a.q[static_cast<size_t>(t) * a.cols_padded];
    for (int s = 0; s < nseg; ++s) {
      const int begin = s * seg, end = std::max(begin, std::min(cols, begin + seg));
      float32x4_t vlo = vdupq_n_f32(0.0f), vhi = vdupq_n_f32(0.0f);
      int j = begin;
      for (; j + 4 <= end; j += 4) {
        const float32x4_t v = vld1q_f32(xt + j);
        vlo = vminnmq_f32(vlo, v);
        vhi = vmaxnmq_f32(vhi, v);
      }
      float lo = vminnmvq_f32(vlo), hi = vmaxnmvq_f32(vhi);
      for (; j < end; ++j) {
        lo = std::min(lo, xt[j]);
        hi = std::max(hi, xt[j]);
      }
      const SegmentParams sp = segment_params(lo, hi, p.bits, p.clip(s));
      const float scale = sp.scale, inv = 1.0f / scale;
      const int zero = sp.zero;

      const float32x4_t vinv = vdupq_n_f32(inv);
      const int32x4_t vz = vdupq_n_s32(zero);
      auto codes4 = [&](const float* src) {
        const int32x4_t c = vaddq_s32(vcvtnq_s32_f32(vmulq_f32(vld1q_f32(src), vinv)), vz);
        return vminq_s32(vmaxq_s32(c, vzero_floor), vlevels);
      };
      j = begin;
      for (; j + 16 <= end; j += 16) {
        const uint16x8_t lo8 =
            vcombine_u16(vqmovun_s32(codes4(xt + j)), vqmovun_s32(codes4(xt + j + 4)));
        const uint16x8_t hi8 =
            vcombine_u16(vqmovun_s32(codes4(xt + j + 8)), vqmovun_s32(codes4(xt + j + 12)));
        vst1q_u8(qt + j, vcombine_u8(vmovn_u16(lo8), vmovn_u16(hi8)));
      }
      for (; j < end; ++j) {
        const int code = static_cast<int>(std::nearbyint(xt[j] * inv)) + zero;
        qt[j] = static_cast<uint8_t>(std::clamp(code, 0, levels));
      }
      // Padding beyond the logical columns: the code of 0, which is the zero point.
      for (; j < begin + seg; ++j) {
        const int code = static_cast<int>(std::nearbyint(0.0f * inv)) + zero;
        qt[j] = static_cast<uint8_t>(std::clamp(code, 0, levels));
      }
      a.scale[static_cast<size_t>(t) * nseg + s] = scale;
      a.zero[static_cast<size_t>(t) * nseg + s] = zero;
    }
    for (int b = 0; b < nblk; ++b)
      a.sums[static_cast<size_t>(t) * nblk + b] =
          static_cast<int32_t>(sum_bytes(qt + static_cast<size_t>(b) * a.block, a.block));
  }
}

// ---------------------------------------------------------------------------------------------
// Attention over the quantized cache. K codes are widened to int16 for integer dots with the
// query (kv_kernels.h); V codes to float, 16 (or 8) at a time, whose sums run in another order
// than the scalar loops (and with fused multiply-adds), which the tests allow for.

// Codes i..i+15 of one position (i even): 8-bit bytes as they are; 4-bit nibbles interleaved
// back into element order (element 2k is the low nibble of byte k).
inline uint8x16_t load_codes16(const uint8_t* codes, int i, int bits) {
  if (bits == 8) return vld1q_u8(codes + i);
  const uint8x8_t b = vld1_u8(codes + i / 2);
  const uint8x8_t lo = vand_u8(b, vdup_n_u8(0x0F)), hi = vshr_n_u8(b, 4);
  return vcombine_u8(vzip1_u8(lo, hi), vzip2_u8(lo, hi));
}

inline uint8x8_t load_codes8(const uint8_t* codes, int i, int bits) {
  if (bits == 8) return vld1_u8(codes + i);
  uint32_t word;
  std::memcpy(&word, codes + i / 2, sizeof word);  // exactly the 4 bytes of 8 nibbles
  const uint8x8_t b = vreinterpret_u8_u32(vdup_n_u32(word));
  return vzip1_u8(vand_u8(b, vdup_n_u8(0x0F)), vshr_n_u8(b, 4));
}

inline float32x4_t widen_lo(uint16x8_t v) { return vcvtq_f32_u32(vmovl_u16(vget_low_u16(v))); }
inline float32x4_t widen_hi(uint16x8_t v) { return vcvtq_f32_u32(vmovl_high_u16(v)); }
inline float32x4_t widen_f16(const uint16_t* p) {
  return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
}

// The per-position K dots (token_walk.h), head by head: 16 codes at a time widened to int16 and
// multiplied by qi with widening multiply-adds into four int32 sums, then 8, then one by one.
void token_dots_neon(const KvView& kv, const int16_t* qi, const float* steps, const float* sums,
                     int n_q, int n_pos, float* scores) {
  const int hd = kv.head_dim, bits = kv.bits;
  const int hd16 = hd / 16 * 16, hd8 = hd / 8 * 8;
  for (int h = 0; h < n_q; ++h, qi += hd, scores += n_pos)
    for (int t = 0; t < n_pos; ++t) {
      const uint8_t* k = kv.k_codes + static_cast<size_t>(t) * kv.head_bytes();
      int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
      int i = 0;
      for (; i < hd16; i += 16) {
        const uint8x16_t c = load_codes16(k, i, bits);
        const int16x8_t c0 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(c)));
        const int16x8_t c1 = vreinterpretq_s16_u16(vmovl_high_u8(c));
        const int16x8_t q0 = vld1q_s16(qi + i), q1 = vld1q_s16(qi + i + 8);
        a0 = vmlal_s16(a0, vget_low_s16(c0), vget_low_s16(q0));
        a1 = vmlal_high_s16(a1, c0, q0);
        a2 = vmlal_s16(a2, vget_low_s16(c1), vget_low_s16(q1));
        a3 = vmlal_high_s16(a3, c1, q1);
      }
      if (i < hd8) {
        const int16x8_t c0 = vreinterpretq_s16_u16(vmovl_u8(load_codes8(k, i, bits)));
        const int16x8_t q0 = vld1q_s16(qi + i);
        a0 = vmlal_s16(a0, vget_low_s16(c0), vget_low_s16(q0));
        a1 = vmlal_high_s16(a1, c0, q0);
        i += 8;
      }
      int32_t dot = vaddvq_s32(vaddq_s32(vaddq_s32(a0, a1), vaddq_s32(a2, a3)));
      for (; i < hd; ++i) dot += qi[i] * row_code(k, bits, i);
      scores[t] = f16_to_f32(kv.k_scale[t]) * (steps[h] * static_cast<float>(dot)) +
                  f16_to_f32(kv.k_min[t]) * sums[h];
    }
}
// Softmax and the V sum of one head whose K scores are in scores (scratch after).
void attend_head_neon(const KvView& kv, float* scores, int n_pos, float* out) {
  const int hd = kv.head_dim, bits = kv.bits;
  const int hd16 = hd / 16 * 16, hd8 = hd / 8 * 8;
  int i = 0;
  const float inv_sum = 1.0f / exp_shifted(scores, n_pos);
  // scores is scratch: from here it holds each position's weight p·s_v of the V codes.
  float32x4_t mins = vdupq_n_f32(0.0f);
  int u = 0;
  for (; u + 4 <= n_pos; u += 4) {
    const float32x4_t prob = vmulq_n_f32(vld1q_f32(scores + u), inv_sum);
    mins = vfmaq_f32(mins, prob, widen_f16(kv.v_min + u));
    vst1q_f32(scores + u, vmulq_f32(prob, widen_f16(kv.v_scale + u)));
  }
  float min_term = vaddvq_f32(mins);
  for (; u < n_pos; ++u) {
    const float prob = scores[u] * inv_sum;
    min_term += prob * f16_to_f32(kv.v_min[u]);
    scores[u] = prob * f16_to_f32(kv.v_scale[u]);
  }

  // out in tiles of 16 (then 8) elements held in registers across all positions.
  i = 0;
  for (; i < hd16; i += 16) {
    float32x4_t o0 = vdupq_n_f32(min_term), o1 = o0, o2 = o0, o3 = o0;
    for (int t = 0; t < n_pos; ++t) {
      const uint8x16_t c = load_codes16(kv.v_codes + static_cast<size_t>(t) * kv.head_bytes(), i, bits);
      const uint16x8_t c0 = vmovl_u8(vget_low_u8(c)), c1 = vmovl_high_u8(c);
      const float ps = scores[t];
      o0 = vfmaq_n_f32(o0, widen_lo(c0), ps);
      o1 = vfmaq_n_f32(o1, widen_hi(c0), ps);
      o2 = vfmaq_n_f32(o2, widen_lo(c1), ps);
      o3 = vfmaq_n_f32(o3, widen_hi(c1), ps);
    }
    vst1q_f32(out + i, o0);
    vst1q_f32(out + i + 4, o1);
    vst1q_f32(out + i + 8, o2);
    vst1q_f32(out + i + 12, o3);
  }
  if (i < hd8) {
    float32x4_t o0 = vdupq_n_f32(min_term), o1 = o0;
    for (int t = 0; t < n_pos; ++t) {
      const uint16x8_t c0 = vmovl_u8(load_codes8(kv.v_codes + static_cast<size_t>(t) * kv.head_bytes(), i, bits));
      o0 = vfmaq_n_f32(o0, widen_lo(c0), scores[t]);
      o1 = vfmaq_n_f32(o1, widen_hi(c0), scores[t]);
    }
    vst1q_f32(out + i, o0);
    vst1q_f32(out + i + 4, o1);
    i += 8;
  }
  for (; i < hd; ++i) {
    float o = 0.0f;
    for (int t = 0; t < n_pos; ++t)
      o += scores[t] * static_cast<float>(row_code(kv.v_codes + static_cast<size_t>(t) * kv.head_bytes(), bits, i));
    out[i] = o + min_term;
  }
}

// The K scores of every head, then the softmax and V sums head by head.
void attend_neon(const KvView& kv, const float* q, int n_q, int n_pos, float* scores, float* out) {
  const int hd = kv.head_dim;
  if (kv.k_group)
    kivi_scores_neon(kv, q, n_q, n_pos, scores);
  else
    token_scores_neon(kv, q, n_q, n_pos, scores);
  for (int h = 0; h < n_q; ++h)
    attend_head_neon(kv, scores + static_cast<size_t>(h) * n_pos, n_pos,
                     out + static_cast<size_t>(h) * hd);
}

// ---------------------------------------------------------------------------------------------
// SwiGLU

// e^x as exp8 in avx2.cpp computes it (relative error a few 1e-8): x = n·ln2 + r with
// |r| ≤ ln2/2, e^r by its Taylor series to r^7, times 2^n built in the exponent bits; 0 below
// kSoftmaxCutoff, +inf above ln(FLT_MAX) (x is clamped to [kSoftmaxCutoff, kExpOverflow], so
// −92 ≤ n ≤ 128).
inline float32x4_t exp4(float32x4_t x) {
  const uint32x4_t kept = vcgeq_f32(x, vdupq_n_f32(kSoftmaxCutoff));
  x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(kSoftmaxCutoff)), vdupq_n_f32(kExpOverflow));
  const float32x4_t n = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
  // ln2 in two parts, the first exact in few bits, so n·ln2 is subtracted without rounding.
  float32x4_t r = vfmsq_n_f32(x, n, 0.693359375f);
  r = vfmsq_n_f32(r, n, -2.12194440e-4f);
  // 2·e^r (every coefficient doubled, which is exact) times 2^(n−1): n = 128 then overflows to
  // +inf in the product instead of wrapping the exponent bits.
  float32x4_t poly = vdupq_n_f32(2.0f / 5040);
#pragma GCC unroll 8
  for (float c : {2.0f / 720, 2.0f / 120, 2.0f / 24, 2.0f / 6, 1.0f, 2.0f, 2.0f})
    poly = vfmaq_f32(vdupq_n_f32(c), poly, r);
  const int32x4_t pow2 = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(126)), 23);
  const float32x4_t e = vmulq_f32(poly, vreinterpretq_f32_s32(pow2));
  return vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(e), kept));
}

// gate / (1 + e^−gate) · up, the scalar reference's operations. Below gate ≈ −88.72, e^−gate
// is +inf and the quotient ±0, as in the reference; above gate = 64, exp4 gives 0, where
// 1 + e^−gate rounds to 1 in the reference too.
inline float32x4_t swiglu4(float32x4_t gate, float32x4_t up) {
  const float32x4_t e = exp4(vnegq_f32(gate));
  return vmulq_f32(vdivq_f32(gate, vaddq_f32(vdupq_n_f32(1.0f), e)), up);
}

// Whole vectors, then the last 1..3 values through a zero-padded vector on the stack.
void swiglu_neon(float* gate, const float* up, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(gate + i, swiglu4(vld1q_f32(gate + i), vld1q_f32(up + i)));
  if (i < n) {
    float g[4] = {}, u[4] = {};
    std::copy(gate + i, gate + n, g);
    std::copy(up + i, up + n, u);
    vst1q_f32(g, swiglu4(vld1q_f32(g), vld1q_f32(u)));
    std::copy(g, g + (n - i), gate + i);
  }
}

// ---------------------------------------------------------------------------------------------
// f16 matrices

// The vector operations of f16_simd.h.
struct NeonF16 {
  using V = float32x4_t;
  static constexpr int W = 4;
  static V zero() { return vdupq_n_f32(0.0f); }
  static V set1(float v) { return vdupq_n_f32(v); }
  static V load(const float* p) { return vld1q_f32(p); }
  static void store(float* p, V v) { vst1q_f32(p, v); }
  static V fma(V a, V b, V c) { return vfmaq_f32(c, a, b); }
  static V load_f16(const uint16_t* p) { return widen_f16(p); }
};

}  // namespace

void token_scores_neon(const KvView& kv, const float* q, int n_q, int n_pos, float* scores) {
  token_walk(kv, q, n_q, n_pos, scores, token_dots_neon);
}

// Four independent pairwise-widening accumulations (uadalp) per 64 bytes; each 16-bit lane
// takes at most 2·255 per step, so the lanes are widened into 64 bits every 64 steps.
uint64_t byte_total_neon(const uint8_t* p, size_t n) {
  uint64x2_t total = vdupq_n_u64(0);
  size_t i = 0;
  while (i + 64 <= n) {
    uint16x8_t acc[4] = {vdupq_n_u16(0), vdupq_n_u16(0), vdupq_n_u16(0), vdupq_n_u16(0)};
    for (int step = 0; step < 64 && i + 64 <= n; ++step, i += 64)
      for (int k = 0; k < 4; ++k) acc[k] = vpadalq_u8(acc[k], vld1q_u8(p + i + 16 * k));
    for (int k = 0; k < 4; ++k) total = vpadalq_u32(total, vpaddlq_u16(acc[k]));
  }
  return vgetq_lane_u64(total, 0) + vgetq_lane_u64(total, 1) + byte_total_scalar(p + i, n - i);
}

const KernelTable kNeonKernels = {"neon", block_dots_neon, nullptr, quantize_acts_neon,
                                   attend_neon, hadamard_neon, byte_total_neon, swiglu_neon,
                                   vecmat_f16_simd<NeonF16>, f16_to_f32_simd<NeonF16>,
                                   checksum_lanes_scalar};  // NEON has no 64-bit multiply

}  // namespace rotor
