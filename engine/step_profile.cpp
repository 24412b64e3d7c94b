#include "engine/step_profile.h"

namespace rotor {

const char* step_name(Step s) {
  switch (s) {
    case Step::kEmbedding: return "embedding";
    case Step::kNorm: return "rmsnorm";
    case Step::kQkv: return "q/k/v proj";
    case Step::kRopeCache: return "rope, R3, cache store";
    case Step::kAttention: return "attention";
    case Step::kOutProj: return "o_proj";
    case Step::kResidBlocks: return "residual blocks";
    case Step::kResidual: return "residual add";
    case Step::kGateUp: return "gate/up proj";
    case Step::kSwiglu: return "swiglu";
    case Step::kR4: return "R4, BDQ scale";
    case Step::kDown: return "down_proj";
    case Step::kClassifier: return "classifier";
    case Step::kCount: break;
  }
  return "?";
}

double StepProfile::total() const {
  double t = 0.0;
  for (double s : seconds) t += s;
  return t;
}

}  // namespace rotor
