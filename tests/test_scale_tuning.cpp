// End-to-end scale tuning (quant/scale_tuning.h): it lowers the quantized model's KL divergence
// from the float model, changes only the scales (codes and zero points stay), and leaves the
// student's float weights equal to what the tuned matrices dequantize to.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/import/load_model.h"
#include "engine/kernels/kernels.h"
#include "quant/calibration.h"
#include "quant/scale_tuning.h"
#include "quant/weight_quantizer.h"
#include "tests/helpers.h"
#include "tokenizer/tokenizer.h"

using namespace rotor;
using namespace rotor::test;

namespace {

// Mean KL(teacher ‖ student) per token over the windows.
double mean_kl(const FloatModel& teacher, const FloatModel& student, const std::vector<std::vector<int>>& windows) {
  FloatBackprop t(teacher), s(student);
  const int V = teacher.config.vocab_size;
  double kl = 0.0;
  size_t tokens = 0;
  for (const std::vector<int>& w : windows) {
    const std::vector<float> a = t.forward(w);
    const std::vector<float>& b = s.forward(w);
    for (size_t r = 0; r < w.size(); ++r) {
      const float* x = &a[r * V];
      const float* y = &b[r * V];
      double mx = -INFINITY, my = -INFINITY, sx = 0.0, sy = 0.0;
      for (int i = 0; i < V; ++i) mx = std::max(mx, static_cast<double>(x[i])), my = std::max(my, static_cast<double>(y[i]));
      for (int i = 0; i < V; ++i) sx += std::exp(x[i] - mx), sy += std::exp(y[i] - my);
      for (int i = 0; i < V; ++i) {
        const double lp = x[i] - mx - std::log(sx), lq = y[i] - my - std::log(sy);
        kl += std::exp(lp) * (lp - lq);
      }
      ++tokens;
    }
  }
  return kl / tokens;
}

}  // namespace

TEST_CASE("scale tuning: lowers the KL to the float model and changes only the scales") {
  auto src = load_model(llama2c_path("stories260K"));
  Tokenizer tok(src->tokenizer_proto, src->tokenizer_path);
  const std::string text = read_file(shared_dir() + "/data/tinystories_val_dev.txt").substr(0, 40000);
  const std::vector<std::vector<int>> windows = calibration_windows(tok, text, 8, 64, 0, src->config.bos_id);

  const FloatModel teacher = float_model_of(*src);
  FloatModel student = teacher;
  std::vector<QuantizedMatrix> matrices;
  matrices.reserve(7 * teacher.layers.size());
  std::vector<TunedLinear> linears;
  for (size_t l = 0; l < student.layers.size(); ++l) {
    FloatLayer& w = student.layers[l];
    const std::pair<std::vector<float>*, std::vector<float> LayerGrads::*> all[] = {
        {&w.wq, &LayerGrads::wq}, {&w.wk, &LayerGrads::wk}, {&w.wv, &LayerGrads::wv},
        {&w.wo, &LayerGrads::wo}, {&w.w_gate, &LayerGrads::w_gate}, {&w.w_up, &LayerGrads::w_up},
        {&w.w_down, &LayerGrads::w_down}};
    for (auto [weights, grad] : all) {
      const int cols = grad == &LayerGrads::w_down ? teacher.config.hidden_dim : teacher.config.dim;
      const int rows = static_cast<int>(weights->size() / cols);
      matrices.push_back(quantize_rtn(weights->data(), rows, cols, {4, l % 2 ? 32 : 0, false, 0}));
      dequantize_rows(matrices.back().view(), 0, rows, weights->data());
      linears.push_back({static_cast<int>(l), grad, &matrices.back(), weights});
    }
  }
  const std::vector<QuantizedMatrix> before = matrices;
  const double kl_before = mean_kl(teacher, student, windows);

  ScaleTuningOptions opt;
  opt.epochs = 3;
  opt.batch = 2;
  int calls = 0;
  const ScaleTuningReport rep = tune_scales(teacher, &student, linears, windows, opt,
                                            [&](int step, int steps, double) {
                                              ++calls;
                                              CHECK(step == calls);
                                              CHECK(steps == 12);
                                            });
  const double kl_after = mean_kl(teacher, student, windows);
  MESSAGE("KL " << kl_before << " -> " << kl_after << " (during tuning " << rep.kl_first << " -> " << rep.kl_last << ")");
  CHECK(calls == 12);
  CHECK(kl_after < 0.9 * kl_before);
  CHECK(rep.kl_last < rep.kl_first);

  size_t scales_moved = 0;
  for (size_t k = 0; k < matrices.size(); ++k) {
    const QuantizedMatrix& m = matrices[k];
    CHECK(m.codes == before[k].codes);
    CHECK(m.zeros == before[k].zeros);
    CHECK(m.sums == before[k].sums);
    for (size_t i = 0; i < m.scales.size(); ++i) scales_moved += m.scales[i] != before[k].scales[i];
    // The student's weights are what the tuned matrix dequantizes to.
    std::vector<float> deq(linears[k].weights->size());
    dequantize_rows(m.view(), 0, m.rows, deq.data());
    double worst = 0.0;
    for (size_t i = 0; i < deq.size(); ++i)
      worst = std::max(worst, std::abs(static_cast<double>(deq[i]) - (*linears[k].weights)[i]) /
                                  (std::abs(deq[i]) + 1e-6));
    CHECK(worst < 1e-5);
  }
  CHECK(scales_moved > 0);
}
