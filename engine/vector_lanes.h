// GCC's portable vector types. The compiler maps them onto the target's registers (a 256-bit
// type onto one ymm, two xmm or two NEON q) with the same per-lane IEEE operations everywhere,
// so code written on them is vectorized even where -O2 would leave a plain loop scalar (a
// loop of unknown trip count, std::min of floats).
#pragma once
#include <cstdint>
#include <cstring>

namespace rotor {

using Floats4 = float __attribute__((vector_size(4 * sizeof(float))));
using Ints4 = int32_t __attribute__((vector_size(4 * sizeof(int32_t))));
using Floats8 = float __attribute__((vector_size(8 * sizeof(float))));
using Ints8 = int32_t __attribute__((vector_size(8 * sizeof(int32_t))));
using Floats16 = float __attribute__((vector_size(16 * sizeof(float))));
using Ints16 = int32_t __attribute__((vector_size(16 * sizeof(int32_t))));
using Shorts8 = int16_t __attribute__((vector_size(8 * sizeof(int16_t))));
using Shorts16 = int16_t __attribute__((vector_size(16 * sizeof(int16_t))));

// v ← the lanes at p. Filled through a reference: a function returning a 256-bit vector by
// value would take a different ABI in the baseline clone than in the AVX2 one.
template <class V, class T>
inline void load_lanes(V& v, const T* p) {
  std::memcpy(&v, p, sizeof v);
}

}  // namespace rotor
