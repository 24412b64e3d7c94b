#include "engine/sampler.h"

#include <algorithm>
#include <cmath>

namespace rotor {

int argmax(const float* x, int n) {
  // The best value stays in a register: reloading x[best] each step made a chain of dependent
  // loads (about 1 µs over stories260K's 512 logits, 3% of its decode).
  int best = 0;
  float top = x[0];
  for (int i = 1; i < n; ++i)
    if (x[i] > top) {
      top = x[i];
      best = i;
    }
  return best;
}

Sampler::Sampler(const SamplingParams& params) : p_(params), rng_(params.seed) {}

void Sampler::remember(int token) {
  if (p_.repeat_penalty == 1.0f || p_.repeat_last_n <= 0) return;
  recent_.push_back(token);
  if (static_cast<int>(recent_.size()) > p_.repeat_last_n)
    recent_.erase(recent_.begin(), recent_.end() - p_.repeat_last_n);
}

void Sampler::observe(const std::vector<int>& tokens) {
  for (int t : tokens) remember(t);
}

int Sampler::sample(const float* logits, int vocab) {
  if (p_.repeat_penalty != 1.0f && !recent_.empty()) {
    penalized_.assign(logits, logits + vocab);
    done_.assign(vocab, 0);
    for (int t : recent_) {
      if (t < 0 || t >= vocab || done_[t]) continue;  // each distinct token once
      done_[t] = 1;
      float& l = penalized_[t];
      l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
    }
    logits = penalized_.data();
  }
  const int token = pick(logits, vocab);
  remember(token);
  return token;
}

int Sampler::pick(const float* logits, int vocab) {
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
  // Min-p: drop candidates whose probability is below min_p times the most likely one's.
  if (p_.min_p > 0.0f) {
    const float floor = p_.min_p * candidates_[0].first;
    size_t keep_p = 1;
    while (keep_p < cut && candidates_[keep_p].first >= floor) ++keep_p;
    cut = keep_p;
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
