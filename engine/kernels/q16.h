// A query in 16-bit integers for the K scores' integer dots (kv_kernels.h), shared by every
// ISA's version so that all of them round it the same way. Each kernel file includes it and
// gets a copy vectorized for its own flags (internal linkage).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace rotor {
namespace {

// q' of one head in 16-bit integers, qi[c] = round(q'_c / step); returns step = max|q'| / 32767
// (0 for q' = 0) and sets *constant. With a per-channel scale and minimum (KIVI's groups):
// q' = qn ⊙ scale and *constant = Σ qn·min; without (Scaled = false, K per position, scale and
// min unused): q' = qn and *constant = Σ qn. The channels go in runs of 8 with fixed trip
// counts and restrict-qualified pointers, which the compiler turns into vector operations
// (eight partial sums and maxima, so every ISA adds in the same order; -O2 leaves a loop of
// unknown trip count scalar). Rounding adds and subtracts 1.5·2^23, round to nearest even for
// |x| < 2^22 (nearbyint is a libm call per channel without SSE4.1).
template <bool Scaled>
inline float quantize_q16(const float* __restrict qn, const float* __restrict scale,
                          const float* __restrict min, int hd, float* __restrict qs,
                          int16_t* __restrict qi, float* constant) {
  const int hd8 = hd / 8 * 8;
  float dot[8] = {}, top[8] = {};
  // Plain loops, no lambdas: a lambda's captured pointers lose __restrict, and the loop its
  // vectors.
  for (int i = 0; i < hd8; i += 8)
    for (int j = 0; j < 8; ++j) {
      dot[j] += Scaled ? qn[i + j] * min[i + j] : qn[i + j];
      qs[i + j] = Scaled ? qn[i + j] * scale[i + j] : qn[i + j];
      top[j] = std::max(top[j], std::fabs(qs[i + j]));
    }
  for (int i = hd8; i < hd; ++i) {
    dot[i % 8] += Scaled ? qn[i] * min[i] : qn[i];
    qs[i] = Scaled ? qn[i] * scale[i] : qn[i];
    top[i % 8] = std::max(top[i % 8], std::fabs(qs[i]));
  }
  *constant = ((dot[0] + dot[1]) + (dot[2] + dot[3])) + ((dot[4] + dot[5]) + (dot[6] + dot[7]));
  const float largest = std::max(std::max(std::max(top[0], top[1]), std::max(top[2], top[3])),
                                 std::max(std::max(top[4], top[5]), std::max(top[6], top[7])));
  if (!(largest > 0.0f)) {
    std::fill(qi, qi + hd, int16_t{0});
    return 0.0f;
  }
  constexpr float kMax = 32767.0f, kRound = 12582912.0f;  // 1.5·2^23
  const float inv = kMax / largest;
  for (int i = 0; i < hd8; i += 8)
    for (int j = 0; j < 8; ++j)
      qi[i + j] = static_cast<int16_t>(static_cast<int>((qs[i + j] * inv + kRound) - kRound));
  for (int i = hd8; i < hd; ++i)
    qi[i] = static_cast<int16_t>(static_cast<int>((qs[i] * inv + kRound) - kRound));
  return largest / kMax;
}

}  // namespace
}  // namespace rotor
