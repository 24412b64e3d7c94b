// rotor synth: a random-weight file of a given shape loads, runs with finite logits, is the
// same for the same seed, and refuses bad shapes and flags; the streamed checksum it relies on
// equals the one-shot one.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <nlohmann/json.hpp>
#include <vector>

#include "engine/error.h"
#include "engine/format/rotor_format.h"
#include "engine/import/load_model.h"
#include "engine/session.h"
#include "quant/model_shapes.h"
#include "quant/synth_model.h"
#include "tests/helpers.h"

using namespace rotor;
using namespace rotor::test;

namespace {

// 2 layers, grouped-query attention, an MLP width that needs column padding, 512 tokens.
ModelConfig tiny_shape() {
  ModelConfig c;
  c.dim = 64;
  c.hidden_dim = 172;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.vocab_size = 512;
  c.max_seq_len = 64;
  c.tied_embeddings = false;
  return c;
}

std::string tiny_tokenizer() { return read_file(shared_dir() + "/models/stories260K/tokenizer.model"); }

std::string synth_bytes(const Recipe& r, const std::string& path) {
  write_synth_model(tiny_shape(), r, tiny_tokenizer(), "", path, [](int, int) {});
  return read_file(path);
}

const std::vector<std::string> kTinyFlags = {"--dim", "64", "--layers", "2", "--heads", "4",
                                             "--kv-heads", "2", "--hidden", "172", "--vocab",
                                             "512", "--ctx", "64"};

CliResult synth_cli(std::vector<std::string> args) {
  args.insert(args.begin(), "synth");
  return run_rotor(args);
}

}  // namespace

TEST_CASE("synth: the file loads with its shape and recipe and decodes to finite logits") {
  for (int a_bits : {4, 8, 16}) {
    CAPTURE(a_bits);
    TempDir tmp;
    Recipe r;
    r.weights = "random";
    r.a_bits = a_bits;
    r.kv_bits = a_bits;
    r.group = a_bits == 4 ? 32 : 0;
    r.classifier_bits = a_bits == 4 ? 4 : 8;  // 4: the classifier in groups too
    synth_bytes(r, tmp.file("m.rotor"));
    auto m = load_model(tmp.file("m.rotor"));
    CHECK(m->format == "rotor");
    CHECK(m->config.dim == 64);
    CHECK(m->config.hidden_dim == 172);
    CHECK(m->config.n_kv_heads == 2);
    CHECK(!m->config.tied_embeddings);
    CHECK(m->recipe.a_bits == a_bits);
    CHECK(m->recipe.group == r.group);
    CHECK(m->recipe.classifier_bits == r.classifier_bits);
    CHECK(m->classifier->type_name() ==
          "w" + std::to_string(r.classifier_bits) + "a" + (a_bits == 16 ? "16" : "8"));

    Session s(*m);
    const int V = m->config.vocab_size;
    const float* logits = s.prefill({1, 17, 300, 42});
    for (int step = 0; step < 3; ++step) {
      for (int v = 0; v < V; ++v) REQUIRE(std::isfinite(logits[v]));
      logits = s.decode(100 + step);
    }
    float lo = logits[0], hi = logits[0];
    for (int v = 0; v < V; ++v) {
      REQUIRE(std::isfinite(logits[v]));
      lo = std::min(lo, logits[v]);
      hi = std::max(hi, logits[v]);
    }
    CHECK(hi > lo);  // the random weights do reach the logits
  }
}

TEST_CASE("synth: a rotation recipe's online steps are in the file and run") {
  for (const char* rotation : {"hadamard", "psot-layer"})
    for (int kv_k_group : {0, 32}) {
      CAPTURE(rotation); CAPTURE(kv_k_group);
      TempDir tmp;
      Recipe r;
      r.weights = "random";
      r.a_bits = 4;
      r.kv_bits = 4;
      r.kv_k_group = kv_k_group;
      r.rotation = rotation;
      r.bdq = true;
      write_synth_model(tiny_shape(), r, tiny_tokenizer(), shared_dir() + "/data/hadamard",
                        tmp.file("m.rotor"), [](int, int) {});
      auto m = load_model(tmp.file("m.rotor"));
      CHECK((m->online.qk != nullptr) == (kv_k_group == 0));  // R3 with per-token K only
      REQUIRE(m->online.down != nullptr);
      const bool per_layer = std::string(rotation) == "psot-layer";
      uint64_t linear_bytes = m->embedding->row_bytes() + m->classifier->weight_bytes();
      for (const LayerWeights& l : m->layers) {
        CHECK(l.down_scale != nullptr);
        CHECK(static_cast<bool>(l.resid_attn) == per_layer);
        CHECK(static_cast<bool>(l.resid_mlp) == per_layer);
        if (per_layer) CHECK((l.resid_attn.f16 != nullptr && l.resid_mlp.f16 != nullptr));
        for (const Linear* lin : {l.wq.get(), l.wk.get(), l.wv.get(), l.wo.get(),
                                  l.w_gate.get(), l.w_up.get(), l.w_down.get()})
          linear_bytes += lin->weight_bytes();
      }
      // Decode reads psot-layer's two f16 residual blocks per layer as well.
      const uint64_t dim = m->config.dim, b = dim / m->online.resid_blocks;
      const uint64_t resid =
          per_layer ? m->layers.size() * 2 * m->online.resid_blocks * b * b * sizeof(uint16_t) : 0;
      CHECK(m->weight_bytes_per_token() == linear_bytes + resid);
      // rotor info names the file's format version and the blocks' storage type.
      auto info = nlohmann::json::parse(run_rotor({"info", tmp.file("m.rotor"), "--json"}).out);
      CHECK(info["format_version"] == format::kVersion);
      CHECK(info.contains("residual_blocks") == per_layer);
      if (per_layer) CHECK(info["residual_blocks"] == "f16");
      Session s(*m);
      const float* logits = s.prefill({1, 17, 300, 42});
      logits = s.decode(100);
      for (int v = 0; v < m->config.vocab_size; ++v) REQUIRE(std::isfinite(logits[v]));
    }
}

TEST_CASE("synth: the same seed gives the same bytes, another seed other weights") {
  TempDir tmp;
  Recipe r;
  r.weights = "random";
  r.seed = 7;
  const std::string a = synth_bytes(r, tmp.file("a.rotor"));
  CHECK(a == synth_bytes(r, tmp.file("b.rotor")));
  r.seed = 8;
  const std::string c = synth_bytes(r, tmp.file("c.rotor"));
  CHECK(a.size() == c.size());
  CHECK(a != c);
  // Through the CLI as well, with the default seed.
  for (const char* name : {"x.rotor", "y.rotor"}) {
    std::vector<std::string> args = kTinyFlags;
    args.insert(args.end(), {"--tokenizer", shared_dir() + "/models/stories260K/tokenizer.model",
                             "-o", tmp.file(name)});
    CliResult res = synth_cli(args);
    REQUIRE_MESSAGE(res.exit_code == 0, res.err);
  }
  CHECK(read_file(tmp.file("x.rotor")) == read_file(tmp.file("y.rotor")));
}

TEST_CASE("synth: named shapes carry the published configs") {
  const ModelConfig t = model_shape("tinyllama-1.1b");
  CHECK(t.dim == 2048);
  CHECK(t.n_layers == 22);
  CHECK(t.n_kv_heads == 4);
  CHECK(t.hidden_dim == 5632);
  const ModelConfig l3 = model_shape("llama3-8b");
  CHECK(l3.vocab_size == 128256);
  CHECK(l3.hidden_dim == 14336);
  for (const NamedShape& s : model_shapes()) CHECK_NOTHROW(s.config.validate(s.name));
  CHECK_THROWS_AS(model_shape("llama9-1t"), Error);
}

TEST_CASE("synth: bad shapes and flags are refused with a one-line error") {
  TempDir tmp;
  const std::string out = tmp.file("m.rotor");
  const std::string tok = shared_dir() + "/models/stories260K/tokenizer.model";
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  auto tiny = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = kTinyFlags;
    args.insert(args.end(), {"--tokenizer", tok, "-o", out});
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  const Case cases[] = {
      {{"--shape", "llama9-1t", "-o", out}, "unknown model shape 'llama9-1t'"},
      {{"--dim", "64", "-o", out}, "no shape given"},
      {tiny({"--heads", "3"}), "not a multiple of n_heads"},
      {tiny({"--kv-heads", "3"}), "not a multiple of n_kv_heads"},
      {tiny({"--dim", "0"}), "out of range"},
      {tiny({"--w-bits", "3"}), "'--w-bits' = 3 is not one of 4, 8"},
      {tiny({"--group", "48"}), "is not one of 0, 32, 64, 128"},
      {tiny({"--a-bits", "2"}), "is not one of 4, 8, 16"},
      {tiny({"--classifier-bits", "16"}), "'--classifier-bits' = 16 is not one of 4, 8"},
      {tiny({"--vocab", "100"}), "tokenizer has 512 pieces but the vocabulary is 100"},
      {tiny({"--tokenizer", tmp.file("none.model")}), "cannot open"},
      {{"--shape", "tinyllama-1.1b"}, "no output given"},
      {tiny({"--rotation", "spin"}), "'--rotation' = spin is not one of"},
      {tiny({"--bdq"}), "'--bdq' needs a rotation"},
      {tiny({"--rotation", "hadamard", "--hadamard-dir", tmp.file("nowhere")}), "cannot open Hadamard matrix file"},
      // A file no quantized cache could run: refused before it is written.
      {tiny({"--dim", "1024", "--heads", "2", "--kv-heads", "2", "--kv-bits", "4"}),
       "a quantized K/V cache needs a head size of at most 256, not 512"},
  };
  for (const Case& c : cases) {
    CliResult r = synth_cli(c.args);
    CAPTURE(r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(c.message) != std::string::npos);
    CHECK(r.err.find('\n') == r.err.size() - 1);
    CHECK_FALSE(std::ifstream(out).good());  // nothing written
  }
  CliResult help = synth_cli({"--help"});
  CHECK(help.exit_code == 0);
  CHECK(help.out.rfind("Usage: rotor synth", 0) == 0);
}

TEST_CASE("synth: the checksum of bytes streamed in pieces equals the one-shot checksum") {
  std::string bytes(1000, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 131 + 7);
  for (size_t size : {0, 5, 31, 32, 33, 64, 100, 1000})
    for (size_t piece : {1, 3, 32, 45, 1000}) {
      CAPTURE(size);
      CAPTURE(piece);
      format::Checksum c;
      for (size_t at = 0; at < size; at += piece) c.update(bytes.data() + at, std::min(piece, size - at));
      CHECK(c.digest() == format::checksum(bytes.data(), size));
    }
}
