#include "quant/calibration.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "engine/error.h"

namespace rotor {

std::vector<std::vector<int>> calibration_windows(const Tokenizer& tok, const std::string& text,
                                                  int windows, int ctx, uint64_t seed, int bos) {
  const std::vector<int> ids = tok.encode(text);
  const int chunk = ctx - 1;
  const int available = static_cast<int>(ids.size() / chunk);
  if (available == 0)
    throw Error("calibration text has " + std::to_string(ids.size()) +
                " tokens, fewer than one window of " + std::to_string(ctx));
  std::vector<int> order(available);
  std::iota(order.begin(), order.end(), 0);
  if (windows < available) {
    std::mt19937_64 rng(seed);
    std::shuffle(order.begin(), order.end(), rng);
    order.resize(windows);
    std::sort(order.begin(), order.end());
  }
  std::vector<std::vector<int>> out;
  for (int w : order) {
    std::vector<int> win = {bos};
    win.insert(win.end(), ids.begin() + static_cast<size_t>(w) * chunk,
               ids.begin() + static_cast<size_t>(w + 1) * chunk);
    out.push_back(std::move(win));
  }
  return out;
}

HessianCollector::HessianCollector(const ModelConfig& c) : h_(c.n_layers) {
  const size_t D = c.dim, I = c.hidden_dim;
  for (auto& layer : h_) {
    layer[static_cast<int>(LinearInput::kAttention)].assign(D * D, 0.0);
    layer[static_cast<int>(LinearInput::kAttentionOut)].assign(D * D, 0.0);
    layer[static_cast<int>(LinearInput::kMlp)].assign(D * D, 0.0);
    layer[static_cast<int>(LinearInput::kMlpDown)].assign(I * I, 0.0);
  }
}

void HessianCollector::observe(int layer, LinearInput which, const float* x, int rows, int cols) {
  xd_.assign(x, x + static_cast<size_t>(rows) * cols);
  std::vector<double>& h = h_[layer][static_cast<int>(which)];
  cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, cols, rows, 2.0, xd_.data(), cols, 1.0,
              h.data(), cols);
}

const std::vector<double>& HessianCollector::hessian(int layer, LinearInput which) const {
  return h_[layer][static_cast<int>(which)];
}

void HessianCollector::collect(const Model& model, const std::vector<std::vector<int>>& windows,
                               const std::function<void(int, int)>& progress) {
  const int ctx = static_cast<int>(windows.front().size());
  Session session(model, ctx);
  session.set_observer(this);
  for (size_t w = 0; w < windows.size(); ++w) {
    session.reset();
    session.prefill(windows[w]);
    if (progress) progress(static_cast<int>(w + 1), static_cast<int>(windows.size()));
  }
  for (auto& layer : h_)  // mirror the upper triangle dsyrk filled
    for (auto& h : layer) {
      const size_t n = static_cast<size_t>(std::sqrt(static_cast<double>(h.size())));
      for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j < i; ++j) h[i * n + j] = h[j * n + i];
    }
}

}  // namespace rotor
