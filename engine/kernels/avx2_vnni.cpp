// The AVX2 table for CPUs with AVX-VNNI (Intel from Alder Lake on, without AVX-512): the block
// dots of avx2_block_dots.h for 4-bit weights by vpdpbusd, which multiplies 32 unsigned
// activation bytes by 32 weight bytes and adds each four into an int32 lane in one
// instruction, where maddubs, madd and an add took three. Everything else is the AVX2 table's.
// TinyLlama-shaped prefill with ROTOR_ISA=avx2 on the development VM: ~35% faster
// (docs/BENCHMARKS.md).
#include "engine/kernels/avx2_block_dots.h"

namespace rotor {

namespace {

struct Vnni {
  static __m256i chunk(__m256i acc, __m256i q_lo, __m256i w_lo, __m256i q_hi, __m256i w_hi) {
    return _mm256_dpbusd_avx_epi32(_mm256_dpbusd_avx_epi32(acc, q_lo, w_lo), q_hi, w_hi);
  }
  static __m256i half(__m256i acc, __m256i q, __m256i w) {
    return _mm256_dpbusd_avx_epi32(acc, q, w);
  }
};

// 8-bit weights (a small model's, or the embedding and classifier) as the AVX2 table does
// them: by vpdpbusd they decoded no faster at TinyLlama's shape (docs/BENCHMARKS.md).
void block_dots_avx2_vnni(const PackedMatrix& w, const uint8_t* q, size_t q_stride,
                          int n_tokens, int r0, int r1, int32_t* dots) {
  if (w.bits != 4) return kAvx2Kernels.block_dots(w, q, q_stride, n_tokens, r0, r1, dots);
  nibble_block_dots<Vnni>(w, q, q_stride, n_tokens, r0, r1, dots);
}

KernelTable with_vnni_dots(KernelTable t) {
  t.name = "avx2+vnni";
  t.block_dots = block_dots_avx2_vnni;
  return t;
}

}  // namespace

// kAvx2Kernels is constant-initialized (function addresses only), so it is complete before
// this copy is made.
const KernelTable kAvx2VnniKernels = with_vnni_dots(kAvx2Kernels);

}  // namespace rotor
