#include "engine/sampler.h"

#include <algorithm>
#include <cmath>

namespace rotor {

int argmax(const float* x, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

Sampler::Sampler(const SamplingParams& params) : p_(params), rng_(params.seed) {}

int Sampler::sample(const float* logits, int vocab) {
  if (p_.temperature <= 0.0f) return argmax(logits, vocab);
  candidates_.resize(vocab);
  for (int i = 0; i < vocab; ++i) candidates_[i] = {logits[i] / p_.temperature, i};
  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first; };
  int keep = (p_.top_k > 0 && p_.top_k < vocab) ? p_.top_k : vocab;
  std::partial_sort(candidates_.begin(), candidates_.begin() + keep, candidates_.end(), by_logit);
  candidates_.resize(keep);

  // Softmax over the kept candidates (sorted, so the first is the maximum).
  const float max = candidates_[0].first;
  double sum = 0.0;
  for (auto& c : candidates_) {
    c.first = std::exp(c.first - max);
    sum += c.first;
  }
  // Nucleus: the smallest prefix whose probability reaches top_p.
  double cumulative = 0.0;
  size_t cut = candidates_.size();
  for (size_t i = 0; i < candidates_.size(); ++i) {
    cumulative += candidates_[i].first / sum;
    if (cumulative >= p_.top_p) {
      cut = i + 1;
      break;
    }
  }
  double mass = 0.0;
  for (size_t i = 0; i < cut; ++i) mass += candidates_[i].first;
  std::uniform_real_distribution<double> uniform(0.0, mass);
  double r = uniform(rng_);
  for (size_t i = 0; i < cut; ++i) {
    r -= candidates_[i].first;
    if (r <= 0.0) return candidates_[i].second;
  }
  return candidates_[cut - 1].second;
}

}  // namespace rotor
