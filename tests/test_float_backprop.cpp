// The quantizer's differentiable forward pass (quant/float_backprop.h): its logits are the
// engine's on the same float model (online R4 with BDQ scales and residual blocks included),
// and its weight gradients match central finite differences.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "engine/import/load_model.h"
#include "engine/session.h"
#include "quant/float_backprop.h"
#include "quant/hadamard_tables.h"
#include "tests/helpers.h"

using namespace rotor;
using namespace rotor::test;

namespace {

// stories260K as floats with every online step the backward pass must undo: R4 of size 172 with
// a per-channel scale after it, and two residual blocks per sublayer. They change the model's
// function (nothing is folded into the weights), which does not matter here: both passes
// compute the same changed model.
FloatModel model_with_online_steps() {
  FloatModel fm = float_model_of(*load_model(llama2c_path("stories260K")));
  const int D = fm.config.dim, I = fm.config.hidden_dim;
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> scale(0.5f, 1.5f);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  fm.down_hadamard.n = I;
  fm.down_hadamard.seed = 5;
  fm.down_hadamard.h_m = load_hadamard_matrix(shared_dir() + "/data/hadamard", 172);
  fm.resid_blocks = 2;
  const int b = D / fm.resid_blocks;
  for (FloatLayer& l : fm.layers) {
    l.down_scale.resize(I);
    for (float& s : l.down_scale) s = scale(rng);
    for (std::vector<float>* blocks : {&l.resid_attn, &l.resid_mlp}) {
      blocks->resize(static_cast<size_t>(fm.resid_blocks) * b * b);
      for (float& v : *blocks) v = normal(rng) / std::sqrt(static_cast<float>(b));
    }
  }
  return fm;
}

std::vector<int> some_tokens(int n, int vocab) {
  std::mt19937 rng(4);
  std::vector<int> t(n);
  for (int& id : t) id = std::uniform_int_distribution<int>(0, vocab - 1)(rng);
  t[0] = 1;  // BOS
  return t;
}

// L = Σ r ⊙ logits, in double.
double loss(FloatBackprop& bp, const std::vector<int>& tokens, const std::vector<float>& r) {
  const std::vector<float>& logits = bp.forward(tokens);
  double sum = 0.0;
  for (size_t i = 0; i < r.size(); ++i) sum += static_cast<double>(r[i]) * logits[i];
  return sum;
}

}  // namespace

TEST_CASE("float backprop: forward gives the engine's logits") {
  const FloatModel fm = model_with_online_steps();
  const std::vector<int> tokens = some_tokens(40, fm.config.vocab_size);
  FloatBackprop bp(fm);
  const std::vector<float> ours = bp.forward(tokens);
  const std::unique_ptr<Model> model = to_model(fm);
  Session s(*model);
  std::vector<float> engine;
  s.prefill(tokens, &engine);
  REQUIRE(ours.size() == engine.size());
  double worst = 0.0, largest = 0.0;
  for (size_t i = 0; i < ours.size(); ++i) {
    worst = std::max(worst, std::abs(static_cast<double>(ours[i]) - engine[i]));
    largest = std::max(largest, std::abs(static_cast<double>(engine[i])));
  }
  CHECK(largest > 1.0);
  CHECK(worst < 1e-3);
}

TEST_CASE("float backprop: weight gradients match finite differences") {
  FloatModel fm = model_with_online_steps();
  const std::vector<int> tokens = some_tokens(24, fm.config.vocab_size);
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> r(tokens.size() * fm.config.vocab_size);
  for (float& v : r) v = normal(rng);

  FloatBackprop bp(fm);
  bp.forward(tokens);
  ModelGrads grads;
  bp.backward(r, &grads);
  REQUIRE(grads.layers.size() == fm.layers.size());

  // Per matrix, the derivative along a random direction u (all entries at once, so float
  // rounding in the loss is small against it): (L(W + εu) − L(W − εu)) / 2ε against Σ g·u.
  const float eps = 2.5e-4f;
  int checked = 0;
  for (size_t l = 0; l < fm.layers.size(); ++l) {
    FloatLayer& w = fm.layers[l];
    const LayerGrads& g = grads.layers[l];
    const std::pair<std::vector<float>*, const std::vector<float>*> linears[] = {
        {&w.wq, &g.wq}, {&w.wk, &g.wk}, {&w.wv, &g.wv}, {&w.wo, &g.wo},
        {&w.w_gate, &g.w_gate}, {&w.w_up, &g.w_up}, {&w.w_down, &g.w_down}};
    for (auto [weights, grad] : linears) {
      REQUIRE(grad->size() == weights->size());
      const std::vector<float> keep = *weights;
      std::vector<float> u(keep.size());
      double analytic = 0.0;
      for (size_t i = 0; i < u.size(); ++i) {
        u[i] = normal(rng);
        analytic += static_cast<double>(u[i]) * (*grad)[i];
      }
      for (size_t i = 0; i < u.size(); ++i) (*weights)[i] = keep[i] + eps * u[i];
      const double up = loss(bp, tokens, r);
      for (size_t i = 0; i < u.size(); ++i) (*weights)[i] = keep[i] - eps * u[i];
      const double down = loss(bp, tokens, r);
      *weights = keep;
      const double numeric = (up - down) / (2.0 * eps);
      CAPTURE(l);
      CAPTURE(numeric);
      CHECK(std::abs(analytic) > 1.0);
      CHECK(std::abs(numeric - analytic) < 1e-2 * std::abs(analytic));
      ++checked;
    }
  }
  CHECK(checked == 7 * static_cast<int>(fm.layers.size()));
}
