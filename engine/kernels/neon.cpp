// PLACEHOLDER until the neon kernels land: forwards to the scalar reference.
#include "engine/kernels/kernels.h"

namespace rotor {
const KernelTable kNeonKernels = {"neon", kScalarKernels.block_dots, quantize_acts_scalar, attend_scalar};
}  // namespace rotor
