// The Hugging Face directories of ../shared/models hold the same models as the llama2.c files,
// with q/k rows in rotate-half order: the importer must undo that exactly.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/import/dtype.h"
#include "engine/import/load_model.h"
#include "engine/sampler.h"
#include "engine/session.h"
#include "tests/helpers.h"

using namespace rotor;
using namespace rotor::test;

namespace {

// Logits of every position of a fixed token sequence (token ids that every 512 vocab has).
std::vector<float> logits_of(const Model& model) {
  std::vector<int> tokens = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395,
                             317, 426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322};
  Session s(model, std::min(64, model.config.max_seq_len));
  std::vector<float> logits;
  s.prefill(tokens, &logits);
  return logits;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  float m = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

}  // namespace

TEST_CASE("hf: f32 directories give the llama2.c logits, bf16 ones stay close") {
  for (const std::string name : {"stories260K", "aidreams260K"}) {
    CAPTURE(name);
    auto base = load_model(llama2c_path(name));
    auto f32 = load_model(shared_dir() + "/models/" + name + "-hf-f32");
    auto bf16 = load_model(shared_dir() + "/models/" + name + "-hf-bf16");
    CHECK(f32->config.dim == base->config.dim);
    CHECK(f32->config.n_kv_heads == base->config.n_kv_heads);
    CHECK(f32->config.max_seq_len == base->config.max_seq_len);
    CHECK(bf16->dtype == "bf16");

    const std::vector<float> ref = logits_of(*base);
    // Same weights, same arithmetic: the only difference allowed is none at all.
    CHECK(max_abs_diff(logits_of(*f32), ref) == 0.0f);

    // bf16 keeps 8 significant bits: a relative rounding error of up to 2^-9 (0.2%) per
    // weight. Through 4-5 layers and logits of magnitude 10-20 that moves logits by about a
    // tenth (measured: 0.12 stories260K, 0.08 aidreams260K). The bound of 0.25 leaves twice
    // that, and the argmax must still agree at all but two positions.
    const std::vector<float> low = logits_of(*bf16);
    const float diff = max_abs_diff(low, ref);
    MESSAGE(name << " bf16 vs f32: max |logit diff| " << diff);
    CHECK(diff < 0.25f);
    const int V = base->config.vocab_size, T = static_cast<int>(ref.size()) / V;
    int agree = 0;
    for (int t = 0; t < T; ++t) agree += argmax(&low[t * V], V) == argmax(&ref[t * V], V);
    CHECK(agree >= T - 2);
  }
}

TEST_CASE("hf: 16-bit float conversions are exact") {
  CHECK(f16_to_f32(0x3C00) == 1.0f);
  CHECK(f16_to_f32(0xC000) == -2.0f);
  CHECK(f16_to_f32(0x7BFF) == 65504.0f);                 // largest normal
  CHECK(f16_to_f32(0x0400) == std::ldexp(1.0f, -14));    // smallest normal
  CHECK(f16_to_f32(0x0001) == std::ldexp(1.0f, -24));    // smallest subnormal
  CHECK(f16_to_f32(0x03FF) == std::ldexp(1023.0f, -24)); // largest subnormal
  CHECK(f16_to_f32(0x8000) == 0.0f);
  CHECK(std::signbit(f16_to_f32(0x8000)));
  CHECK(std::isinf(f16_to_f32(0x7C00)));
  CHECK(std::isnan(f16_to_f32(0x7E00)));
  CHECK(bf16_to_f32(0x3F80) == 1.0f);
  CHECK(bf16_to_f32(0xC2F7) == -123.5f);
}

TEST_CASE("hf: a checkpoint sharded over two files with an index loads the same model") {
  // Split stories260K's safetensors in two by tensor name and write the index HF writes.
  const std::string src = shared_dir() + "/models/stories260K-hf-f32/";
  const std::string bytes = read_file(src + "model.safetensors");
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  const auto header = nlohmann::json::parse(bytes.substr(8, n));
  const std::string payload = bytes.substr(8 + n);
  TempDir tmp;
  nlohmann::json shard[2] = {nlohmann::json::object(), nlohmann::json::object()};
  std::string data[2];
  nlohmann::json index = {{"metadata", nlohmann::json::object()}, {"weight_map", nlohmann::json::object()}};
  int i = 0;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const int s = i++ % 2;
    const auto off = it.value()["data_offsets"].get<std::vector<uint64_t>>();
    nlohmann::json t = it.value();
    t["data_offsets"] = {data[s].size(), data[s].size() + (off[1] - off[0])};
    data[s] += payload.substr(off[0], off[1] - off[0]);
    shard[s][it.key()] = t;
    index["weight_map"][it.key()] = "model-0000" + std::to_string(s + 1) + "-of-00002.safetensors";
  }
  for (int s = 0; s < 2; ++s) {
    const std::string h = shard[s].dump();
    const uint64_t len = h.size();
    write_file(tmp.file("model-0000" + std::to_string(s + 1) + "-of-00002.safetensors"),
               std::string(reinterpret_cast<const char*>(&len), 8) + h + data[s]);
  }
  write_file(tmp.file("model.safetensors.index.json"), index.dump());
  for (const char* f : {"config.json", "tokenizer.model"}) write_file(tmp.file(f), read_file(src + f));

  auto sharded = load_model(tmp.path());
  auto whole = load_model(src);
  CHECK(max_abs_diff(logits_of(*sharded), logits_of(*whole)) == 0.0f);

  // An index naming a file that is not there is refused.
  index["weight_map"]["model.norm.weight"] = "model-00003-of-00002.safetensors";
  write_file(tmp.file("model.safetensors.index.json"), index.dump());
  CHECK_THROWS_AS(load_model(tmp.path()), Error);
}
