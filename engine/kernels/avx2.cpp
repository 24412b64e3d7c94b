// PLACEHOLDER until the avx2 kernels land: forwards to the scalar reference.
#include "engine/kernels/kernels.h"

namespace rotor {
const KernelTable kAvx2Kernels = {"avx2", kScalarKernels.block_dots, quantize_acts_scalar, attend_scalar};
}  // namespace rotor
