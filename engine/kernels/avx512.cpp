// PLACEHOLDER until the avx512 kernels land: forwards to the scalar reference.
#include "engine/kernels/kernels.h"

namespace rotor {
const KernelTable kAvx512Kernels = {"avx512", kScalarKernels.block_dots, quantize_acts_scalar, attend_scalar};
}  // namespace rotor
