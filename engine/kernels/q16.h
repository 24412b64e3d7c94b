// A query in 16-bit integers for the K scores' integer dots (kv_kernels.h), shared by every
// ISA's version so that all of them round it the same way. Each kernel file includes it and
// gets a copy vectorized for its own flags (internal linkage).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "engine/vector_lanes.h"

namespace rotor {
namespace {

// One vector F of channels from c: q' into qs, and into the lanes of dot and top. Inlined: as
// a call it cost head size 8's KIVI scores (stories260K) 15% more.
template <bool Scaled, class F>
__attribute__((always_inline)) inline void q16_lanes(const float* qn, const float* scale,
                                                    const float* min, int c, float* qs, F& dot,
                                                    F& top) {
  F x, q;
  load_lanes(x, qn + c);
  if constexpr (Scaled) {
    F s, m;
    load_lanes(s, scale + c);
    load_lanes(m, min + c);
    dot += x * m;
    q = x * s;
  } else {
    dot += x;
    q = x;
  }
  std::memcpy(qs + c, &q, sizeof q);
  const F magnitude = q < 0.0f ? -q : q;
  top = top < magnitude ? magnitude : top;
}

// q' of one head in 16-bit integers, qi[c] = round(q'_c / step); returns step = max|q'| / 32767
// (0 for q' = 0) and sets *constant. With a per-channel scale and minimum (KIVI's groups):
// q' = qn ⊙ scale and *constant = Σ qn·min; without (Scaled = false, K per position, scale and
// min unused): q' = qn and *constant = Σ qn. The channels go sixteen at a time on vector types
// (sixteen partial sums and maxima, so every ISA adds in the same order), then eight into the
// low lanes if as many are left, the rest one by one; the rounding likewise. At head size 8
// (all of it in the eight), KIVI's scores took 36% longer with those eight lane by lane (each
// update of a vector held in memory waits on the last) and 46% with their rounding scalar.
// Rounding adds and subtracts 1.5·2^23, round to nearest even for |x| < 2^22 (nearbyint is a
// libm call per channel without SSE4.1).
template <bool Scaled>
inline float quantize_q16(const float* qn, const float* scale, const float* min, int hd,
                          float* qs, int16_t* qi, float* constant) {
  const int hd16 = hd / 16 * 16;
  Floats16 dot = {}, top = {};
  for (int i = 0; i < hd16; i += 16) q16_lanes<Scaled>(qn, scale, min, i, qs, dot, top);
  int rest = hd16;
  if (hd - rest >= 8) {  // eight more as one vector in the low lanes (head size 8 is all this)
    Floats8 dot8, top8;
    std::memcpy(&dot8, &dot, sizeof dot8);
    std::memcpy(&top8, &top, sizeof top8);
    q16_lanes<Scaled>(qn, scale, min, rest, qs, dot8, top8);
    std::memcpy(&dot, &dot8, sizeof dot8);
    std::memcpy(&top, &top8, sizeof top8);
    rest += 8;
  }
  for (int i = rest; i < hd; ++i) {
    dot[i % 16] += Scaled ? qn[i] * min[i] : qn[i];
    qs[i] = Scaled ? qn[i] * scale[i] : qn[i];
    top[i % 16] = std::max(top[i % 16], std::fabs(qs[i]));
  }
  // The lanes j and j + 8 pairwise, then lane 0 gathers the tree
  // ((d0 + d1) + (d2 + d3)) + ((d4 + d5) + (d6 + d7)) (and the same of std::max) in vector steps.
  Floats8 d, t, high;
  std::memcpy(&d, &dot, sizeof d);
  std::memcpy(&high, reinterpret_cast<const char*>(&dot) + sizeof d, sizeof high);
  d += high;
  std::memcpy(&t, &top, sizeof t);
  std::memcpy(&high, reinterpret_cast<const char*>(&top) + sizeof t, sizeof high);
  t = t < high ? high : t;
  auto fold = [&](Floats8 other_d, Floats8 other_t) {
    d += other_d;
    t = t < other_t ? other_t : t;
  };
  fold(__builtin_shufflevector(d, d, 1, 0, 3, 2, 5, 4, 7, 6),
       __builtin_shufflevector(t, t, 1, 0, 3, 2, 5, 4, 7, 6));
  fold(__builtin_shufflevector(d, d, 2, 3, 0, 1, 6, 7, 4, 5),
       __builtin_shufflevector(t, t, 2, 3, 0, 1, 6, 7, 4, 5));
  fold(__builtin_shufflevector(d, d, 4, 5, 6, 7, 0, 1, 2, 3),
       __builtin_shufflevector(t, t, 4, 5, 6, 7, 0, 1, 2, 3));
  *constant = d[0];
  const float largest = t[0];
  if (!(largest > 0.0f)) {
    std::fill(qi, qi + hd, int16_t{0});
    return 0.0f;
  }
  constexpr float kMax = 32767.0f, kRound = 12582912.0f;  // 1.5·2^23
  const float inv = kMax / largest;
  // qi of one vector of channels from c: F floats, I their int32 lanes, S the int16 ones.
  auto round = [&](int c, auto f, auto i, auto s) __attribute__((always_inline)) {
    using F = decltype(f);
    F q;
    load_lanes(q, qs + c);
    const auto r = __builtin_convertvector(
        __builtin_convertvector((q * inv + kRound) - kRound, decltype(i)), decltype(s));
    std::memcpy(qi + c, &r, sizeof r);
  };
  for (int c = 0; c < hd16; c += 16) round(c, Floats16{}, Ints16{}, Shorts16{});
  if (rest > hd16) round(hd16, Floats8{}, Ints8{}, Shorts8{});  // the eight above
  for (int i = rest; i < hd; ++i)
    qi[i] = static_cast<int16_t>(static_cast<int>((qs[i] * inv + kRound) - kRound));
  return largest / kMax;
}

}  // namespace
}  // namespace rotor
