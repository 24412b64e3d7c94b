// Sampling: greedy at temperature 0, seeded reproducibility, top-k / top-p restrict the
// candidates, and at temperature 1 the frequencies follow the softmax.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "engine/sampler.h"

using namespace rotor;

TEST_CASE("sampler") {
  const std::vector<float> logits = {0.5f, 2.0f, 1.0f, -1.0f, 1.9f};
  const int V = static_cast<int>(logits.size());

  SUBCASE("temperature 0 is argmax") {
    Sampler s({0.0f, 40, 0.95f, 7});
    for (int i = 0; i < 10; ++i) CHECK(s.sample(logits.data(), V) == 1);
  }
  SUBCASE("top-k 1 is argmax at any temperature") {
    Sampler s({5.0f, 1, 1.0f, 7});
    for (int i = 0; i < 50; ++i) CHECK(s.sample(logits.data(), V) == 1);
  }
  SUBCASE("top-k 2 never leaves the two most likely tokens") {
    Sampler s({5.0f, 2, 1.0f, 3});
    for (int i = 0; i < 200; ++i) {
      int t = s.sample(logits.data(), V);
      CHECK((t == 1 || t == 4));
    }
  }
  SUBCASE("a tiny top-p keeps only the most likely token") {
    Sampler s({1.0f, 0, 1e-6f, 3});
    for (int i = 0; i < 50; ++i) CHECK(s.sample(logits.data(), V) == 1);
  }
  SUBCASE("the same seed gives the same tokens, another seed other tokens") {
    Sampler a({1.0f, 0, 1.0f, 42}), b({1.0f, 0, 1.0f, 42}), c({1.0f, 0, 1.0f, 43});
    std::vector<int> ta, tb, tc;
    for (int i = 0; i < 64; ++i) {
      ta.push_back(a.sample(logits.data(), V));
      tb.push_back(b.sample(logits.data(), V));
      tc.push_back(c.sample(logits.data(), V));
    }
    CHECK(ta == tb);
    CHECK(ta != tc);
  }
  SUBCASE("temperature 1 without limits samples the softmax") {
    Sampler s({1.0f, 0, 1.0f, 11});
    const int n = 40000;
    std::vector<int> counts(V);
    for (int i = 0; i < n; ++i) ++counts[s.sample(logits.data(), V)];
    double z = 0;
    for (float l : logits) z += std::exp(l);
    for (int i = 0; i < V; ++i) {
      const double p = std::exp(logits[i]) / z;
      const double sigma = std::sqrt(p * (1 - p) / n);
      CAPTURE(i);
      CHECK(std::fabs(counts[i] / double(n) - p) < 5 * sigma);
    }
  }
}

TEST_CASE("sampler: min-p and the repetition penalty") {
  const std::vector<float> logits = {0.5f, 2.0f, 1.0f, -1.0f, 1.9f};
  const int V = static_cast<int>(logits.size());
  SUBCASE("min-p keeps only tokens nearly as likely as the best") {
    SamplingParams p{1.0f, 0, 1.0f, 5};
    p.min_p = 0.8f;  // exp(1.9 - 2.0) = 0.905 stays, exp(-1) = 0.37 goes
    Sampler s(p);
    for (int i = 0; i < 200; ++i) {
      const int t = s.sample(logits.data(), V);
      CHECK((t == 1 || t == 4));
    }
  }
  SUBCASE("the repetition penalty turns greedy away from a token just produced") {
    SamplingParams p{0.0f, 0, 1.0f, 0};
    p.repeat_penalty = 1.5f;
    Sampler s(p);
    CHECK(s.sample(logits.data(), V) == 1);
    CHECK(s.sample(logits.data(), V) == 4);  // 2.0 / 1.5 < 1.9
    CHECK(s.sample(logits.data(), V) == 1);  // both penalized once: 2.0 / 1.5 > 1.9 / 1.5 > 1.0
    s.clear_history();
    CHECK(s.sample(logits.data(), V) == 1);
    s.observe({4, 4, 2});  // counted once each: 1.9 / 1.5 < 2.0 / 1.5
    CHECK(s.sample(logits.data(), V) == 1);
  }
}
