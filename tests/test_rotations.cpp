// The rotations issue's invariants: every rotation mode and BDQ keeps the model's function
// (with float weights, activations and cache the rotated file gives the fp32 logits), learned
// matrices are orthogonal, PSOT's objective falls and its gradient is right, outlier-token
// selection finds planted tokens, and BDQ never raises a layer's quantized error.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "engine/import/load_model.h"
#include "engine/session.h"
#include "quant/bdq.h"
#include "quant/hadamard_tables.h"
#include "quant/psot.h"
#include "quant/quantize_model.h"
#include "quant/rotations.h"
#include "tests/helpers.h"
#include "tokenizer/tokenizer.h"

using namespace rotor;
using namespace rotor::test;

namespace {

std::string read_text(const std::string& path, size_t bytes) {
  return read_file(path).substr(0, bytes);
}

std::vector<float> all_logits(const Model& m, const std::vector<int>& tokens) {
  Session s(m);
  std::vector<float> out;
  s.prefill(tokens, &out);
  return out;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0.0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(static_cast<double>(a[i]) - b[i]));
  return d;
}

std::vector<float> gaussian(size_t n, std::mt19937& rng, float sd = 1.0f) {
  std::normal_distribution<float> normal(0.0f, sd);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

}  // namespace

TEST_CASE("rotations: with float weights, activations and cache every mode gives the fp32 logits") {
  for (const std::string name : {"stories260K", "aidreams260K"}) {
    auto src = load_model(llama2c_path(name));
    Tokenizer tok(src->tokenizer_proto, src->tokenizer_path);
    const std::vector<int> prompt = [&] {
      std::vector<int> t = {src->config.bos_id};
      for (int id : tok.encode("Once upon a time, there was a little girl named Lily. She loved"))
        t.push_back(id);
      return t;
    }();
    const std::vector<float> ref = all_logits(*src, prompt);
    for (const std::string rotation : {"none", "hadamard", "psot", "psot-layer"}) {
      for (bool bdq : {false, true}) {
        if (rotation == "none" && !bdq) continue;
        CAPTURE(name);
        CAPTURE(rotation);
        CAPTURE(bdq);
        Recipe r;
        r.w_bits = 32;
        r.a_bits = 16;
        r.kv_bits = 16;
        r.embed_bits = 32;
        r.classifier_bits = 32;
        r.weights = "rtn";
        r.rotation = rotation;
        r.bdq = bdq;
        r.calib_windows = 6;
        r.calib_ctx = 64;
        QuantizeInputs in;
        in.calib_text = read_text(shared_dir() + "/data/tinystories_val_dev.txt", 40000);
        in.hadamard_dir = shared_dir() + "/data/hadamard";
        TempDir tmp;
        quantize_model(*src, tok, r, in, tmp.file("m.rotor"), [](const QuantizeProgress&) {});
        auto m = load_model(tmp.file("m.rotor"));
        CHECK((m->online.qk != nullptr) == (rotation != "none"));
        CHECK((m->online.down != nullptr) == (rotation != "none"));
        CHECK(static_cast<bool>(m->layers[1].resid_attn) == (rotation == "psot-layer"));
        CHECK((m->layers[1].down_scale != nullptr) == (bdq && rotation != "none"));
        const double diff = max_abs_diff(all_logits(*m, prompt), ref);
        MESSAGE(name << " " << rotation << std::string(bdq ? " + bdq" : "") << ": max |logit diff| " << diff);
        CHECK(diff < 1e-3);
        // Decode runs one row at a time, which takes its own paths through the online steps.
        Session s(*m);
        s.prefill(std::vector<int>(prompt.begin(), prompt.end() - 1));
        const float* last = s.decode(prompt.back());
        const size_t V = m->config.vocab_size;
        const std::vector<float> decoded(last, last + V);
        CHECK(max_abs_diff(decoded, std::vector<float>(ref.end() - V, ref.end())) < 1e-3);
      }
    }
  }
}

TEST_CASE("rotations: Hadamard matrices and block rotations are orthogonal") {
  for (int n : {8, 64, 172}) {
    HadamardSpec s;
    s.n = n;
    s.seed = 7;
    if (n == 172) s.h_m = load_hadamard_matrix(shared_dir() + "/data/hadamard", 172);
    CHECK(Orthogonal::hadamard(s).orthogonality_error() < 1e-6);
  }
}

TEST_CASE("psot: the cost's gradient matches finite differences") {
  std::mt19937 rng(3);
  PsotTensor x;
  x.width = 6;
  x.rows = gaussian(5 * 6, rng);
  x.rows[7] = 9.0f;  // a peak
  x.weights = {1, 30, 1, 1, 1};
  x.window_of = {0, 0, 0, 0, 0};
  Orthogonal q = Orthogonal::identity(6);
  for (double& v : q.q) v += 0.1 * std::normal_distribution<double>()(rng);
  std::vector<double> grad;
  psot_cost(x, 0, 5, q, 2.0, &grad);
  for (int k : {0, 7, 20, 35}) {
    const double h = 1e-6;
    Orthogonal plus = q, minus = q;
    plus.q[k] += h;
    minus.q[k] -= h;
    const double numeric = (psot_cost(x, 0, 5, plus, 2.0, nullptr) -
                            psot_cost(x, 0, 5, minus, 2.0, nullptr)) / (2 * h);
    CAPTURE(k);
    CHECK(grad[k] == doctest::Approx(numeric).epsilon(1e-5));
  }
}

TEST_CASE("psot: learning keeps Q orthogonal and lowers the objective") {
  std::mt19937 rng(5);
  const int n = 32, windows = 8, tokens = 64;
  PsotTensor x;
  x.width = n;
  for (int w = 0; w < windows; ++w)
    for (int t = 0; t < tokens; ++t) {
      std::vector<float> row = gaussian(n, rng);
      row[3] *= 20.0f;  // an outlier channel: a rotation can spread it
      x.rows.insert(x.rows.end(), row.begin(), row.end());
      x.weights.push_back(1.0f);
      x.window_of.push_back(w);
    }
  double before = 0, after = 0;
  PsotOptions o;
  o.epochs = 5;
  const Orthogonal q = learn_rotation({x}, Orthogonal::identity(n), o, -1, [&](double b, double a) {
    before = b;
    after = a;
  });
  MESSAGE("objective " << before << " -> " << after);
  CHECK(after < 0.8 * before);
  CHECK(q.orthogonality_error() < 1e-5);
}

TEST_CASE("psot: outlier-token selection picks the planted tokens") {
  std::mt19937 rng(11);
  const int tokens = 256, channels = 64;
  const std::vector<int> planted = {0, 17, 140};
  std::vector<std::vector<float>> windows;
  for (int w = 0; w < 12; ++w) {
    std::vector<float> x = gaussian(static_cast<size_t>(tokens) * channels, rng);
    for (int t : planted) x[static_cast<size_t>(t) * channels + (t + w) % channels] = 40.0f;
    windows.push_back(std::move(x));
  }
  const OutlierSelection sel = select_outlier_tokens(windows, channels);
  CHECK(sel.k >= 4);
  for (const auto& wt : sel.weights)
    for (int t = 0; t < tokens; ++t) {
      const bool is_planted = std::find(planted.begin(), planted.end(), t) != planted.end();
      CHECK(wt[t] == (is_planted ? 30.0f : 1.0f));
    }
}

TEST_CASE("bdq: the chosen scales never raise the quantized layer error, and cut it on an outlier channel") {
  std::mt19937 rng(13);
  const int rows = 256, cols = 64, out = 48;
  std::vector<float> x = gaussian(static_cast<size_t>(rows) * cols, rng);
  for (int t = 0; t < rows; ++t) x[static_cast<size_t>(t) * cols + 5] *= 30.0f;  // outlier channel
  const std::vector<float> w = gaussian(static_cast<size_t>(out) * cols, rng, 0.05f);
  BdqProblem p;
  p.x = x.data();
  p.rows = rows;
  p.cols = cols;
  p.w = {w.data()};
  p.outs = {out};
  p.weights = {4, 0, false, 0};
  p.act = {4, 0, 0, 1.0f, 1.0f};
  const BdqChoice c = choose_bdq_scale(p);
  MESSAGE("bdq " << c.method << ": " << c.error_identity << " -> " << c.error);
  CHECK(c.error <= c.error_identity);
  CHECK(c.error < 0.5 * c.error_identity);
  CHECK(c.s[5] > 2.0f);  // the outlier channel is divided down
}
