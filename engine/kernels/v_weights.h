// The V sums' weights w_t = e_t·v_scale_t (softmax numerator times the V row's scale) in
// 14-bit integers, for the AVX-512 V sums by byte dots (attend_simd.h). Per chunk of kVChunk
// positions, code_t = round(w_t / step) with step = max w / 16383, taken in two 7-bit halves,
// hi = code >> 7 and lo = code & 127, as the signed bytes of vpdpbusd against the V codes as
// its unsigned ones: a chunk's sums are exact int32 (256 positions · 255 · 16383 < 2^31).
// A weight moves by at most step / 2 (1/32766 of the chunk's largest), so an output by at
// most Σ_t step / 2 · code_t / Σ e_t (the tests check this bound), where storing V in 4 bits
// moved each row by up to half a V step. The other paths sum the weights in float. Included
// by the kernel files and the tests (internal linkage).
#pragma once
#include <algorithm>
#include <cstdint>

namespace rotor {
namespace {

constexpr int kVChunk = 256;
constexpr float kVCodeMax = 16383.0f;

inline int v_chunks(int n) { return (n + kVChunk - 1) / kVChunk; }

// The step of a chunk whose largest weight is `largest`: largest / 16383, 0 when all are 0.
inline float v_step(float largest) { return largest > 0.0f ? largest / kVCodeMax : 0.0f; }

// round(w / step) for 0 ≤ w ≤ 16383·step, as a float: adding and subtracting 1.5·2^23 rounds
// to nearest even (nearbyint is a libm call per weight without SSE4.1).
constexpr float kVRound = 12582912.0f;
inline float v_code(float w, float inv_step) { return (w * inv_step + kVRound) - kVRound; }

inline float inverse_step(float step) { return step > 0.0f ? 1.0f / step : 0.0f; }

// The codes of w[0, n) in halves hi[t] = code_t >> 7 and lo[t] = code_t & 127, zero from n up
// to a multiple of 4 (the integer V sums take positions 4 at a time), given the chunks' steps.
// Runs of 8 with fixed trip counts and restrict-qualified pointers, which the compiler turns
// into vector operations (-O2 leaves a loop of unknown trip count scalar).
inline void split_v_weights(const float* __restrict w, int n, const float* __restrict steps,
                            int8_t* __restrict hi, int8_t* __restrict lo) {
  for (int c = 0; c < n; c += kVChunk) {
    const int len = std::min(kVChunk, n - c), len8 = len / 8 * 8;
    const float inv = inverse_step(steps[c / kVChunk]);
    const float* __restrict x = w + c;
    int8_t* __restrict h = hi + c;
    int8_t* __restrict l = lo + c;
    for (int i = 0; i < len8; i += 8)
      for (int j = 0; j < 8; ++j) {
        const int code = static_cast<int>(v_code(x[i + j], inv));
        h[i + j] = static_cast<int8_t>(code >> 7);
        l[i + j] = static_cast<int8_t>(code & 127);
      }
    for (int i = len8; i < len; ++i) {
      const int code = static_cast<int>(v_code(x[i], inv));
      h[i] = static_cast<int8_t>(code >> 7);
      l[i] = static_cast<int8_t>(code & 127);
    }
  }
  for (int t = n; t % 4; ++t) hi[t] = lo[t] = 0;
}

}  // namespace
}  // namespace rotor
