// The offline quantizer: weight quantization (RTN, GPTQ, groups, padding, symmetric), the
// quantized linear layer against float maths, and whole models end to end.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <random>

#include "engine/import/load_model.h"
#include "engine/quantized_linear.h"
#include "engine/session.h"
#include "quant/calibration.h"
#include "quant/float_model.h"
#include "quant/layer_error.h"
#include "quant/weight_quantizer.h"
#include "tokenizer/tokenizer.h"
#include "tests/helpers.h"

using namespace rotor;
using namespace rotor::test;

namespace {

std::vector<float> random_matrix(int rows, int cols, std::mt19937& rng, float outlier = 0.0f) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> w(static_cast<size_t>(rows) * cols);
  for (auto& v : w) v = normal(rng);
  if (outlier > 0) w[3] = outlier;
  return w;
}

std::vector<float> dequantized(const QuantizedMatrix& q) {
  std::vector<float> out(static_cast<size_t>(q.rows) * q.cols);
  dequantize_rows(q.view(), 0, q.rows, out.data());
  return out;
}

double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / den);
}

// ‖X·Wᵀ − X·Ŵᵀ‖ / ‖X·Wᵀ‖ on rows of X.
double output_error(const std::vector<float>& x, int n, const std::vector<float>& w,
                    const std::vector<float>& wq, int rows, int cols) {
  double num = 0, den = 0;
  for (int t = 0; t < n; ++t)
    for (int r = 0; r < rows; ++r) {
      double y = 0, yq = 0;
      for (int j = 0; j < cols; ++j) {
        y += x[t * cols + j] * w[r * cols + j];
        yq += x[t * cols + j] * wq[r * cols + j];
      }
      num += (y - yq) * (y - yq);
      den += y * y;
    }
  return std::sqrt(num / den);
}

}  // namespace

TEST_CASE("quantizer: layout pads to chunks, groups and head segments") {
  int padded, group, block;
  plan_layout(172, {4, 0, false, 0}, &padded, &group, &block);
  CHECK(padded == 192);
  CHECK(group == 192);
  CHECK(block == 192);
  plan_layout(172, {4, 128, false, 0}, &padded, &group, &block);
  CHECK(padded == 256);
  CHECK(group == 128);
  plan_layout(64, {4, 0, false, 8}, &padded, &group, &block);  // o_proj of a head size of 8
  CHECK(padded == 64);
  CHECK(block == 8);
  plan_layout(4096, {4, 32, false, 128}, &padded, &group, &block);
  CHECK(block == 32);
}

TEST_CASE("quantizer: RTN error is small and shrinks with bits and groups") {
  std::mt19937 rng(3);
  const int rows = 48, cols = 172;
  const auto w = random_matrix(rows, cols, rng, 12.0f);
  const double e4 = relative_error(dequantized(quantize_rtn(w.data(), rows, cols, {4, 0, false, 0})), w);
  const double e4g = relative_error(dequantized(quantize_rtn(w.data(), rows, cols, {4, 32, false, 0})), w);
  const double e8 = relative_error(dequantized(quantize_rtn(w.data(), rows, cols, {8, 0, false, 0})), w);
  MESSAGE("RTN relative error: w4 " << e4 << ", w4 g32 " << e4g << ", w8 " << e8);
  CHECK(e4 < 0.15);
  CHECK(e4g < e4);
  CHECK(e8 < e4 / 8);
  const QuantizedMatrix sym = quantize_rtn(w.data(), rows, cols, {4, 32, true, 0});
  for (int z : sym.zeros) CHECK(z == 0);
  CHECK(relative_error(dequantized(sym), w) < 0.2);
}

TEST_CASE("quantizer: padding columns contribute exactly nothing") {
  std::mt19937 rng(4);
  const int rows = 8, cols = 100;
  const auto w = random_matrix(rows, cols, rng);
  const QuantizedMatrix q = quantize_rtn(w.data(), rows, cols, {4, 32, false, 0});
  REQUIRE(q.cols_padded == 128);
  // Dequantizing the whole padded width: the padding must be exactly 0.
  PackedMatrix wide = q.view();
  wide.cols = wide.cols_padded;
  std::vector<float> all(static_cast<size_t>(rows) * q.cols_padded);
  dequantize_rows(wide, 0, rows, all.data());
  for (int r = 0; r < rows; ++r)
    for (int j = cols; j < q.cols_padded; ++j) CHECK(all[r * q.cols_padded + j] == 0.0f);
}

TEST_CASE("quantizer: GPTQ beats RTN on the layer output for correlated inputs") {
  std::mt19937 rng(5);
  const int rows = 32, cols = 96, n = 512;
  const auto w = random_matrix(rows, cols, rng);
  // Correlated inputs: x = z · M with a random mixing M, as in real activations.
  const auto z = random_matrix(n, cols, rng), mix = random_matrix(cols, cols, rng);
  std::vector<float> x(static_cast<size_t>(n) * cols, 0.0f);
  for (int t = 0; t < n; ++t)
    for (int k = 0; k < cols; ++k)
      for (int j = 0; j < cols; ++j) x[t * cols + j] += z[t * cols + k] * mix[k * cols + j] * 0.2f;
  std::vector<double> h(static_cast<size_t>(cols) * cols, 0.0);
  for (int t = 0; t < n; ++t)
    for (int i = 0; i < cols; ++i)
      for (int j = 0; j < cols; ++j) h[i * cols + j] += 2.0 * x[t * cols + i] * x[t * cols + j];
  for (int group : {0, 32}) {
    CAPTURE(group);
    const WeightQuantSpec s{4, group, false, 0};
    const double rtn = output_error(x, n, w, dequantized(quantize_rtn(w.data(), rows, cols, s)), rows, cols);
    const double gptq = output_error(x, n, w, dequantized(quantize_gptq(w.data(), rows, cols, h, s)), rows, cols);
    MESSAGE("output error, group " << group << ": RTN " << rtn << ", GPTQ " << gptq);
    CHECK(gptq < 0.8 * rtn);
  }
}

TEST_CASE("calibration: the classifier's input is seen at every position; GPTQ fits the classifier to it") {
  auto m = load_model(llama2c_path("stories260K"));
  const ModelConfig& c = m->config;
  const int D = c.dim, V = c.vocab_size;
  Tokenizer tok(m->tokenizer_proto, m->tokenizer_path);
  const std::string text = read_file(shared_dir() + "/data/tinystories_val_dev.txt").substr(0, 20000);
  const auto windows = calibration_windows(tok, text, 8, 64, 0, c.bos_id);
  HessianCollector h(c, {LinearInput::kClassifier});
  ActivationRecorder rec(c.n_layers, {LinearInput::kClassifier}, 1);
  run_calibration(*m, windows, {&h, &rec}, nullptr);
  const ActivationRecorder::Rows& x = rec.rows(c.n_layers, LinearInput::kClassifier);
  REQUIRE(x.cols == D);
  REQUIRE(x.n() == 8 * 64);
  // The last row of a window is what the classifier turns into that window's logits.
  Session s(*m);
  const float* logits = s.prefill(windows.back());
  std::vector<float> y(V);
  m->classifier->forward(&x.data[static_cast<size_t>(x.n() - 1) * D], 1, y.data());
  float diff = 0.0f;
  for (int v = 0; v < V; ++v) diff = std::max(diff, std::fabs(y[v] - logits[v]));
  CHECK(diff < 1e-4f);
  // The Hessian is 2·XᵀX of those rows.
  const std::vector<double>& hc = h.hessian(c.n_layers, LinearInput::kClassifier);
  double worst = 0.0, scale = 0.0;
  for (int i = 0; i < D; ++i)
    for (int j = 0; j < D; ++j) {
      double e = 0.0;
      for (int t = 0; t < x.n(); ++t) e += 2.0 * x.data[t * D + i] * x.data[t * D + j];
      worst = std::max(worst, std::fabs(hc[i * D + j] - e));
      scale = std::max(scale, std::fabs(e));
    }
  CHECK(worst < 1e-9 * scale);
  // GPTQ with it rounds the classifier with less output error on those rows than RTN
  // (measured: 0.0365 against 0.0431).
  const std::vector<float> w = float_model_of(*m).classifier;
  const WeightQuantSpec spec{4, 0, false, 0};
  const double rtn = output_error(x.data, x.n(), w, dequantized(quantize_rtn(w.data(), V, D, spec)), V, D);
  const double gptq = output_error(x.data, x.n(), w, dequantized(quantize_gptq(w.data(), V, D, hc, spec)), V, D);
  MESSAGE("classifier output error, 4 bits per channel: RTN " << rtn << ", GPTQ " << gptq);
  CHECK(gptq < 0.9 * rtn);
}

TEST_CASE("quantizer: per-head activation clips refine the shared pair, never worse") {
  // Heads 0 and 2 have an outlier channel and gain from clipping, head 1 does not: the shared
  // pair cannot suit both. cols 376 leaves the last of 3 heads part-filled; 5 segments adds two
  // of padding only.
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int rows = 128, cols = 376, out = 32, hd = 128;
  std::vector<float> x(static_cast<size_t>(rows) * cols);
  for (int t = 0; t < rows; ++t)
    for (int j = 0; j < cols; ++j)
      x[t * cols + j] = j % hd == 5 && j / hd != 1 ? 12.0f : normal(rng);
  const std::vector<float> w = random_matrix(out, cols, rng);
  const std::vector<float> wq = fake_quantize_weights(w.data(), out, cols, {8, 0, false, hd});
  auto error = [&](const ActQuantParams& a) {
    return layer_output_error(x.data(), rows, cols, w.data(), wq.data(), out, a);
  };
  auto refine = [&](const ActQuantParams& a, int segments) {
    return choose_segment_clips(x.data(), rows, cols, {w.data()}, {wq.data()}, {out}, a, segments);
  };
  const ActQuantParams shared = choose_act_clip(x.data(), rows, cols, {w.data()}, {wq.data()},
                                                {out}, {4, hd, 0, 1.0f, 1.0f});
  const ActQuantParams per = refine(shared, 5);
  REQUIRE(per.segment_clips.size() == 5);
  CHECK(per.clip_min == shared.clip_min);
  CHECK(per.clip_max == shared.clip_max);
  CHECK(per.segment_clips[1].max > per.segment_clips[0].max);  // the head without an outlier
  for (int s = 3; s < 5; ++s) {
    CHECK(per.segment_clips[s].min == shared.clip_min);
    CHECK(per.segment_clips[s].max == shared.clip_max);
  }
  const double e_shared = error(shared), e_per = error(per);
  MESSAGE("output error: shared pair " << e_shared << ", per head " << e_per);
  CHECK(e_per < e_shared);
  // Where no head does better on its own, no per-head clips are stored: constant rows, which
  // the full range quantizes best.
  std::fill(x.begin(), x.end(), 0.75f);
  CHECK(refine({4, hd, 0, 1.0f, 1.0f}, 3).segment_clips.empty());
}

TEST_CASE("quantized linear: integer and float-activation paths follow the float product") {
  std::mt19937 rng(6);
  const int rows = 40, cols = 172, n = 5;
  const auto w = random_matrix(rows, cols, rng);
  const auto x = random_matrix(n, cols, rng);
  const QuantizedMatrix q = quantize_rtn(w.data(), rows, cols, {8, 0, false, 0});
  const auto wq = dequantized(q);
  std::vector<float> ref(static_cast<size_t>(n) * rows);
  for (int t = 0; t < n; ++t)
    for (int r = 0; r < rows; ++r) {
      double y = 0;
      for (int j = 0; j < cols; ++j) y += x[t * cols + j] * wq[r * cols + j];
      ref[t * rows + r] = static_cast<float>(y);
    }
  for (int a_bits : {16, 8}) {
    CAPTURE(a_bits);
    QuantizedLinear lin(q.view(), {a_bits, q.cols_padded, q.block, 1.0f, 1.0f});
    std::vector<float> y(ref.size()), y1(rows);
    lin.forward(x.data(), n, y.data());
    const double err = relative_error(y, ref);
    MESSAGE("a" << a_bits << " relative error vs float: " << err);
    CHECK(err < (a_bits == 16 ? 1e-5 : 0.02));
    lin.forward(x.data() + 2 * cols, 1, y1.data());  // decode gives the prefill row exactly
    for (int r = 0; r < rows; ++r) CHECK(y1[r] == y[2 * rows + r]);
  }
}

TEST_CASE("quantize end to end: W8A8KV8 within 1% of fp32; 4-bit files load and generate") {
  // About 80 windows of the evaluation text keep this fast; docs/QUALITY.md has full-text figures.
  TempDir tmp;
  const std::string text = read_file(shared_dir() + "/data/tinystories_val_dev.txt");
  write_file(tmp.file("eval.txt"), text.substr(0, 80000));
  auto ppl = [&](const std::string& model) {
    CliResult r = run_rotor({"ppl", "-m", model, "-f", tmp.file("eval.txt"), "--json"});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    return nlohmann::json::parse(r.out)["ppl"].get<double>();
  };
  const std::string src = llama2c_path("stories260K");
  const double base = ppl(src);
  struct Case { std::string name; std::vector<std::string> flags; double max_ratio; };
  const Case cases[] = {
      {"w8a8kv8", {"--w-bits", "8", "--a-bits", "8", "--kv-bits", "8", "--weights", "rtn"}, 1.01},
      // One epoch of scale tuning here (CI time, above all under the sanitizers); the default 4 below.
      {"w4a16", {"--a-bits", "16", "--kv-bits", "16", "--tune-epochs", "1"}, 1.12},
      {"w4a8kv8", {"--a-bits", "8", "--kv-bits", "8", "--tune-epochs", "1"}, 1.12},
      {"w4a4kv4", {"--a-bits", "4", "--kv-bits", "4", "--group", "32"}, 1.3},
      // A 4-bit classifier by GPTQ (its own calibration pass), untuned: measured x1.083; fitted
      // to layer 0's attention input instead of its own (a planted fault) x1.115.
      {"w4a8kv8-c4", {"--a-bits", "8", "--kv-bits", "8", "--classifier-bits", "4", "--tune-epochs", "0"}, 1.10},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    std::vector<std::string> args = {"quantize", "-m", src, "-o", tmp.file(c.name + ".rotor"),
                                     "--calib-windows", "16"};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    CliResult q = run_rotor(args);
    REQUIRE_MESSAGE(q.exit_code == 0, q.err);
    CHECK(q.out.find("bits per weight") != std::string::npos);
    const double p = ppl(tmp.file(c.name + ".rotor"));
    MESSAGE(c.name << ": ppl " << p << " vs fp32 " << base << " (x" << p / base << ")");
    CHECK(p / base < c.max_ratio);
    CliResult gen = run_rotor({"run", "-m", tmp.file(c.name + ".rotor"), "-p", "Once upon a time",
                               "-n", "16", "--temp", "0", "--json"});
    REQUIRE(gen.exit_code == 0);
    CHECK(nlohmann::json::parse(gen.out)["tokens"].size() > 0);
  }
}
