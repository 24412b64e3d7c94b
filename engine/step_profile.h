// Where a forward pass spends its time, step by step: filled by a Session when one is attached
// (Session::set_profile), read by `rotor bench --profile`. Laps of a steady clock, so the
// steps' times add up to the pass's.
#pragma once
#include <array>
#include <chrono>

namespace rotor {

enum class Step {
  kEmbedding,    // token embedding lookup
  kNorm,         // RMSNorm before attention, MLP and the classifier
  kQkv,          // q/k/v projections (activation quantization included, as in every linear)
  kRopeCache,    // RoPE, R3 on Q and K, storing K and V in the cache
  kAttention,    // attention over the cache
  kOutProj,      // o_proj
  kResidBlocks,  // psot-layer's residual basis changes
  kResidual,     // the residual additions
  kGateUp,       // gate and up projections
  kSwiglu,       // SiLU(gate)·up
  kR4,           // R4 and BDQ's down_proj scale
  kDown,         // down_proj
  kClassifier,   // the output projection to logits
  kCount
};

const char* step_name(Step s);

struct StepProfile {
  std::array<double, static_cast<int>(Step::kCount)> seconds{};
  double total() const;
};

// Charges the time since the previous lap to a step; does nothing without a profile.
class StepClock {
 public:
  explicit StepClock(StepProfile* profile)
      : profile_(profile), last_(profile ? Clock::now() : Clock::time_point{}) {}
  void lap(Step s) {
    if (!profile_) return;
    const Clock::time_point now = Clock::now();
    profile_->seconds[static_cast<int>(s)] += std::chrono::duration<double>(now - last_).count();
    last_ = now;
  }

 private:
  using Clock = std::chrono::steady_clock;
  StepProfile* profile_;
  Clock::time_point last_;
};

}  // namespace rotor
