// Picks the next token from logits: greedy at temperature 0, otherwise temperature, top-k,
// top-p (nucleus) and min-p sampling with a seeded generator, so a seed reproduces a run.
// A repetition penalty (applied before everything else, greedy included) divides positive
// logits and multiplies negative ones of the tokens among the last repeat_last_n seen.
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
  float min_p = 0.0f;           // drop tokens less likely than min_p x the top one; 0 = off
  float repeat_penalty = 1.0f;  // 1 = off
  int repeat_last_n = 64;       // how many recent tokens the penalty looks at
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  // The sampled token is remembered for the repetition penalty.
  int sample(const float* logits, int vocab);
  // Tokens seen outside sampling (a prompt) that the repetition penalty should count.
  void observe(const std::vector<int>& tokens);
  // Forgets the remembered tokens (a new conversation).
  void clear_history() { recent_.clear(); }
  const SamplingParams& params() const { return p_; }

 private:
  int pick(const float* logits, int vocab);
  void remember(int token);

  SamplingParams p_;
  std::vector<int> recent_;     // the last repeat_last_n tokens, oldest first
  std::vector<float> penalized_;
  std::vector<char> done_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int>> candidates_;
};

int argmax(const float* x, int n);

}  // namespace rotor
