// End-to-end weight tuning (quant/weight_tuning.h): it lowers the quantized model's KL divergence
// from the float model; it changes the scales and, when asked, moves codes by at most one step
// (zero points, padding and everything else stay); and it leaves the student's float weights
// equal to what the tuned matrices dequantize to.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/import/load_model.h"
#include "engine/kernels/kernels.h"
#include "engine/kernels/pack.h"
#include "quant/calibration.h"
#include "quant/weight_tuning.h"
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

// stories260K with every linear quantized to 4 bits by RTN (odd layers in groups of 32): the
// student of `teacher`, with its matrices and what tuning needs of them.
struct QuantizedStudent {
  FloatModel student;
  std::vector<QuantizedMatrix> matrices;
  std::vector<TunedLinear> linears;

  explicit QuantizedStudent(const FloatModel& teacher) : student(teacher) {
    matrices.reserve(7 * teacher.layers.size());
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
  }
};

// Signed codes [rows, cols_padded] of a packed matrix.
std::vector<int> unpacked_codes(const QuantizedMatrix& m) {
  std::vector<int> codes;
  const size_t row_bytes = packed_row_bytes(m.cols_padded, m.bits);
  for (int r = 0; r < m.rows; ++r)
    for (int j = 0; j < m.cols_padded; ++j) codes.push_back(packed_code(&m.codes[r * row_bytes], m.bits, j));
  return codes;
}

// The student's weights are what the tuned matrix dequantizes to.
void check_student_matches(const QuantizedMatrix& m, const std::vector<float>& weights) {
  std::vector<float> deq(weights.size());
  dequantize_rows(m.view(), 0, m.rows, deq.data());
  double worst = 0.0;
  for (size_t i = 0; i < deq.size(); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(deq[i]) - weights[i]) / (std::abs(deq[i]) + 1e-6));
  CHECK(worst < 1e-5);
}

// 8 windows of 64 tokens of TinyStories.
std::vector<std::vector<int>> calibration_of(const Model& src) {
  Tokenizer tok(src.tokenizer_proto, src.tokenizer_path);
  const std::string text = read_file(shared_dir() + "/data/tinystories_val_dev.txt").substr(0, 40000);
  return calibration_windows(tok, text, 8, 64, 0, src.config.bos_id);
}

}  // namespace

TEST_CASE("weight tuning, scales only: lowers the KL to the float model and changes only the scales") {
  auto src = load_model(llama2c_path("stories260K"));
  const std::vector<std::vector<int>> windows = calibration_of(*src);
  const FloatModel teacher = float_model_of(*src);
  QuantizedStudent q(teacher);
  const std::vector<QuantizedMatrix> before = q.matrices;
  const double kl_before = mean_kl(teacher, q.student, windows);

  WeightTuningOptions opt;
  opt.epochs = 3;
  opt.batch = 2;
  int calls = 0;
  const WeightTuningReport rep = tune_weights(teacher, &q.student, q.linears, windows, opt,
                                              [&](int step, int steps, double) {
                                                ++calls;
                                                CHECK(step == calls);
                                                CHECK(steps == 12);
                                              });
  const double kl_after = mean_kl(teacher, q.student, windows);
  MESSAGE("KL " << kl_before << " -> " << kl_after << " (during tuning " << rep.kl_first << " -> " << rep.kl_last << ")");
  CHECK(calls == 12);
  CHECK(kl_after < 0.9 * kl_before);
  CHECK(rep.kl_last < rep.kl_first);
  CHECK(rep.codes_changed == 0);

  size_t scales_moved = 0;
  for (size_t k = 0; k < q.matrices.size(); ++k) {
    const QuantizedMatrix& m = q.matrices[k];
    CHECK(m.codes == before[k].codes);
    CHECK(m.zeros == before[k].zeros);
    CHECK(m.sums == before[k].sums);
    for (size_t i = 0; i < m.scales.size(); ++i) scales_moved += m.scales[i] != before[k].scales[i];
    check_student_matches(m, *q.linears[k].weights);
  }
  CHECK(scales_moved > 0);
}

TEST_CASE("weight tuning with rounding: codes move by at most one step, and the KL falls further") {
  auto src = load_model(llama2c_path("stories260K"));
  const std::vector<std::vector<int>> windows = calibration_of(*src);
  const FloatModel teacher = float_model_of(*src);
  WeightTuningOptions opt;  // 64 steps: enough for offsets to cross ±0.5 at quantize's rate
  opt.epochs = 8;
  opt.batch = 1;
  double kl_after[2];
  for (const bool rounding : {false, true}) {
    CAPTURE(rounding);
    QuantizedStudent q(teacher);
    const std::vector<QuantizedMatrix> before = q.matrices;
    opt.round_lr = rounding ? kRoundingLearningRate : 0.0f;
    const WeightTuningReport rep = tune_weights(teacher, &q.student, q.linears, windows, opt, [](int, int, double) {});
    kl_after[rounding] = mean_kl(teacher, q.student, windows);
    if (!rounding) continue;
    size_t changed = 0;
    for (size_t k = 0; k < q.matrices.size(); ++k) {
      const QuantizedMatrix& m = q.matrices[k];
      CHECK(m.zeros == before[k].zeros);
      const std::vector<int> now = unpacked_codes(m), was = unpacked_codes(before[k]);
      for (int r = 0; r < m.rows; ++r)
        for (int j = 0; j < m.cols_padded; ++j) {
          const size_t i = static_cast<size_t>(r) * m.cols_padded + j;
          CHECK(std::abs(now[i] - was[i]) <= (j < m.cols ? 1 : 0));  // padding stays at the zero point
          changed += now[i] != was[i];
        }
      // The kernels' block sums follow the new codes.
      std::vector<int8_t> codes(now.begin(), now.end());
      std::vector<int32_t> sums(m.sums.size());
      weight_block_sums(codes.data(), m.rows, m.cols_padded, m.block, sums.data());
      CHECK(m.sums == sums);
      check_student_matches(m, *q.linears[k].weights);
    }
    MESSAGE(changed << " codes changed; KL after tuning: scales only " << kl_after[0] << ", with rounding " << kl_after[1]);
    CHECK(changed == rep.codes_changed);
    CHECK(changed > 0);
  }
  CHECK(kl_after[1] < kl_after[0]);
}
