// Picks the next token from logits: greedy at temperature 0, otherwise temperature, top-k and
// top-p (nucleus) sampling with a seeded generator, so a seed reproduces a run.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace rotor {

struct SamplingParams {
  float temperature = 0.8f;  // 0 = greedy
  int top_k = 40;            // 0 = no limit
  float top_p = 0.95f;       // 1 = no limit
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  int sample(const float* logits, int vocab);

 private:
  SamplingParams p_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int>> candidates_;
};

int argmax(const float* x, int n);

}  // namespace rotor
