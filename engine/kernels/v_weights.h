// The V sums' weights w_t = e_t·v_scale_t (softmax numerator times the V row's scale) in
// 14-bit integers, shared by every ISA's attention so that all of them round them the same
// way. Per chunk of kVChunk positions, code_t = round(w_t / step), step = max w / 16383, so a
// weight moves by at most step / 2: its V row then by step / 2 · code, for output rows a
// fraction of 1e-4 of the largest weight's (a 4-bit V step moves them by far more). The AVX-512
// V sums take the codes in two 7-bit halves, hi = code >> 7 and lo = code & 127, as the signed
// bytes of vpdpbusd against the V codes as its unsigned ones: the sums of a chunk are then exact
// int32 (256 positions · 255 · 16383 < 2^31), and the other ISAs sum the same rounded weights
// in float. Each kernel file includes this and gets a copy vectorized for its own flags.
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

// steps[c] of each chunk c of w[0, n) (≥ 0). The x86 softmax finds the maxima as it makes the
// weights; this is the other ISAs' pass.
inline void v_steps(const float* w, int n, float* steps) {
  for (int c = 0; c < n; c += kVChunk) {
    float largest = 0.0f;
    for (int t = c; t < std::min(n, c + kVChunk); ++t) largest = std::max(largest, w[t]);
    steps[c / kVChunk] = v_step(largest);
  }
}

// round(w / step) for 0 ≤ w ≤ 16383·step: adding and subtracting 1.5·2^23 rounds to nearest
// even (nearbyint is a libm call per weight without SSE4.1).
inline int v_code(float w, float inv_step) {
  constexpr float kRound = 12582912.0f;
  return static_cast<int>((w * inv_step + kRound) - kRound);
}

inline float inverse_step(float step) { return step > 0.0f ? 1.0f / step : 0.0f; }

// w[t] ← code_t·step for t < n, given the chunks' steps: the rounded weights the float V sums
// use. Runs of 8 with fixed trip counts and restrict-qualified pointers, which the compiler
// turns into vector operations (-O2 leaves a loop of unknown trip count scalar).
inline void round_v_weights(float* __restrict w, int n, const float* __restrict steps) {
  for (int c = 0; c < n; c += kVChunk) {
    const int len = std::min(kVChunk, n - c), len8 = len / 8 * 8;
    const float step = steps[c / kVChunk], inv = inverse_step(step);
    float* __restrict x = w + c;
    for (int i = 0; i < len8; i += 8)
      for (int j = 0; j < 8; ++j) x[i + j] = static_cast<float>(v_code(x[i + j], inv)) * step;
    for (int i = len8; i < len; ++i) x[i] = static_cast<float>(v_code(x[i], inv)) * step;
  }
}

// The codes of w[0, n) in halves hi[t] = code_t >> 7 and lo[t] = code_t & 127, zero from n up
// to a multiple of 4 (the integer V sums take positions 4 at a time), given the chunks' steps.
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
        const int code = v_code(x[i + j], inv);
        h[i + j] = static_cast<int8_t>(code >> 7);
        l[i + j] = static_cast<int8_t>(code & 127);
      }
    for (int i = len8; i < len; ++i) {
      const int code = v_code(x[i], inv);
      h[i] = static_cast<int8_t>(code >> 7);
      l[i] = static_cast<int8_t>(code & 127);
    }
  }
  for (int t = n; t % 4; ++t) hi[t] = lo[t] = 0;
}

}  // namespace
}  // namespace rotor
