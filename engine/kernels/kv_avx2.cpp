// AVX2 KIVI K scores (kv_kernels.h), also used by the AVX-512 attention: the work is a few
// conversions and FMAs per byte of codes, which 8-lane vectors already keep ahead of memory.
// A tile of positions keeps its scores in registers while q' is broadcast channel by channel.
#include <immintrin.h>

#include "engine/kernels/kv_kernels.h"
#include "engine/kernels/x86_tiles.h"

namespace rotor {

namespace {

// One step is 8 bytes of a channel's codes: 8 positions at 8 bits; at 4 bits 8 positions from
// the low nibbles and the 8 positions half a group later from the high nibbles.
template <int Bits>
void group_scores(const float* qs, float constant, const uint8_t* codes, int hd, int G,
                  float* scores) {
  constexpr int kVecs = Bits == 8 ? 1 : 2;    // vectors per step
  constexpr int kSteps = 8 / kVecs;           // steps per tile: 8 accumulators
  const int channel_bytes = G * Bits / 8, half = G / 2;
  for (int b0 = 0; b0 < channel_bytes; b0 += 8 * kSteps) {
    const int steps = std::min(kSteps, (channel_bytes - b0) / 8);
    __m256 acc[kSteps * kVecs];
    unrolled<kSteps * kVecs>([&](auto j) { acc[j] = _mm256_set1_ps(constant); });
    for (int c = 0; c < hd; ++c) {
      const __m256 w = _mm256_broadcast_ss(qs + c);
      const uint8_t* b = codes + static_cast<size_t>(c) * channel_bytes + b0;
      // The next group's codes, hd · channel_bytes further: a long cache streams from memory.
      __builtin_prefetch(b + static_cast<size_t>(hd) * channel_bytes);
      unrolled<kSteps>([&](auto s) {
        if (s >= steps) return;
        const __m256i bytes =
            _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + 8 * s)));
        if constexpr (Bits == 8) {
          acc[s] = _mm256_fmadd_ps(w, _mm256_cvtepi32_ps(bytes), acc[s]);
        } else {
          const __m256 lo = _mm256_cvtepi32_ps(_mm256_and_si256(bytes, _mm256_set1_epi32(0x0F)));
          const __m256 hi = _mm256_cvtepi32_ps(_mm256_srli_epi32(bytes, 4));
          acc[2 * s] = _mm256_fmadd_ps(w, lo, acc[2 * s]);
          acc[2 * s + 1] = _mm256_fmadd_ps(w, hi, acc[2 * s + 1]);
        }
      });
    }
    unrolled<kSteps>([&](auto s) {
      if (s >= steps) return;
      const int p = b0 + 8 * s;  // the step's first position (low nibbles at 4 bits)
      if constexpr (Bits == 8) {
        _mm256_storeu_ps(scores + p, acc[s]);
      } else {
        _mm256_storeu_ps(scores + p, acc[2 * s]);
        _mm256_storeu_ps(scores + half + p, acc[2 * s + 1]);
      }
    });
  }
}

void group_scores_avx2(const KvView& kv, const float* qs, float constant, const uint8_t* codes,
                       float* scores) {
  if (kv.bits == 8)
    group_scores<8>(qs, constant, codes, kv.head_dim, kv.k_group, scores);
  else
    group_scores<4>(qs, constant, codes, kv.head_dim, kv.k_group, scores);
}

}  // namespace

void kivi_scores_avx2(const KvView& kv, const float* q, int n_pos, float* scores) {
  kivi_scores(kv, q, n_pos, scores, group_scores_avx2);
}

}  // namespace rotor
