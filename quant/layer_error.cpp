#include "quant/layer_error.h"

#include <cblas.h>

#include <limits>

namespace rotor {

void fake_quantize_acts(const float* x, int rows, int cols, const ActQuantParams& p, float* out) {
  if (p.bits >= 16) {
    std::copy(x, x + static_cast<size_t>(rows) * cols, out);
    return;
  }
  QuantizedActs a;
  a.tokens = rows;
  a.segment = p.segment > 0 ? p.segment : (cols + kChunk - 1) / kChunk * kChunk;
  a.cols_padded = (cols + a.segment - 1) / a.segment * a.segment;
  a.block = a.segment;
  a.q.resize(static_cast<size_t>(rows) * a.cols_padded);
  a.scale.resize(static_cast<size_t>(rows) * (a.cols_padded / a.segment));
  a.zero.resize(a.scale.size());
  a.sums.resize(a.scale.size());
  quantize_acts_scalar(x, cols, rows, p, a);
  const int nseg = a.cols_padded / a.segment;
  for (int t = 0; t < rows; ++t)
    for (int j = 0; j < cols; ++j) {
      const size_t s = static_cast<size_t>(t) * nseg + j / a.segment;
      out[static_cast<size_t>(t) * cols + j] =
          a.scale[s] * static_cast<float>(a.q[static_cast<size_t>(t) * a.cols_padded + j] - a.zero[s]);
    }
}

std::vector<float> fake_quantize_weights(const float* w, int rows, int cols,
                                         const WeightQuantSpec& spec) {
  std::vector<float> out(static_cast<size_t>(rows) * cols);
  if (spec.bits >= 16) {
    std::copy(w, w + out.size(), out.begin());
    return out;
  }
  const QuantizedMatrix m = quantize_rtn(w, rows, cols, spec);
  dequantize_rows(m.view(), 0, rows, out.data());
  return out;
}

double layer_output_error(const float* x, int rows, int cols, const float* w, const float* wq,
                          int out, const ActQuantParams& act) {
  std::vector<float> xq(static_cast<size_t>(rows) * cols), y(static_cast<size_t>(rows) * out);
  fake_quantize_acts(x, rows, cols, act, xq.data());
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, out, cols, 1.0f, x, cols, w, cols,
              0.0f, y.data(), out);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, out, cols, 1.0f, xq.data(), cols, wq,
              cols, -1.0f, y.data(), out);
  double e = 0.0;
  for (float d : y) e += static_cast<double>(d) * d;
  return e;
}

ActQuantParams choose_act_clip(const float* x, int rows, int cols,
                               const std::vector<const float*>& w,
                               const std::vector<const float*>& wq,
                               const std::vector<int>& outs, ActQuantParams act) {
  if (act.bits >= 16) return act;
  double best = std::numeric_limits<double>::infinity();
  ActQuantParams chosen = act;
  for (int i = 0; i < 10; ++i)
    for (int j = 0; j < 10; ++j) {
      act.clip_min = 1.0f - 0.05f * i;
      act.clip_max = 1.0f - 0.05f * j;
      double e = 0.0;
      for (size_t k = 0; k < w.size(); ++k)
        e += layer_output_error(x, rows, cols, w[k], wq[k], outs[k], act);
      if (e < best) {
        best = e;
        chosen = act;
      }
    }
  return chosen;
}

}  // namespace rotor
