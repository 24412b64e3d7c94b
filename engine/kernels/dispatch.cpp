// Picks the kernel table once: the best ISA this CPU supports, unless ROTOR_ISA names one.
#include <cstdlib>
#include <string>

#if defined(__aarch64__)
#include <sys/auxv.h>
#endif

#include "engine/error.h"
#include "engine/kernels/kernels.h"

namespace rotor {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
    case Isa::kNeon: return "neon";
  }
  return "?";
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> isas = {Isa::kScalar};
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("f16c"))
    isas.push_back(Isa::kAvx2);
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vnni"))
    isas.push_back(Isa::kAvx512);
#elif defined(__aarch64__)
  isas.push_back(Isa::kNeon);  // Advanced SIMD is part of every AArch64 CPU
#endif
  return isas;
}

const KernelTable& kernels_for(Isa isa) {
  switch (isa) {
#if defined(__x86_64__)
    case Isa::kAvx2:
      __builtin_cpu_init();
      return __builtin_cpu_supports("avxvnni") ? kAvx2VnniKernels : kAvx2Kernels;
    // Per-channel decode streams faster row by row on Intel, in 8-row tiles of 256-bit steps on
    // Zen 4 (each measured on its machine; others keep the Zen 4 choice, the machine this
    // engine is tuned on).
    case Isa::kAvx512:
      __builtin_cpu_init();
      return __builtin_cpu_is("intel") ? kAvx512RowByRowKernels : kAvx512Kernels;
#elif defined(__aarch64__)
    case Isa::kNeon: return kNeonKernels;
#endif
    default: return kScalarKernels;
  }
}

namespace {
const KernelTable& choose() {
  const std::vector<Isa> isas = supported_isas();
  const char* env = std::getenv("ROTOR_ISA");
  if (!env || !*env) return kernels_for(isas.back());
  const std::string want = env;
  for (Isa isa : isas)
    if (want == isa_name(isa)) return kernels_for(isa);
  std::string have;
  for (Isa isa : isas) have += std::string(have.empty() ? "" : ", ") + isa_name(isa);
  throw Error("ROTOR_ISA=" + want + " is not supported on this CPU (supported: " + have + ")");
}
}  // namespace

const KernelTable& kernels() {
  static const KernelTable& table = choose();
  return table;
}

}  // namespace rotor
