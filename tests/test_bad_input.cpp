// Bad input never crashes: every refused input gets a one-line error naming the problem and
// exit code 2, through the real `rotor` binary.
#include <doctest/doctest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/import/load_model.h"
#include "tests/helpers.h"

using namespace rotor;
using namespace rotor::test;
using nlohmann::json;

namespace {

// Runs rotor and checks: exit code 2, one line on stderr, containing `expected`.
void expect_refusal(const std::vector<std::string>& args, const std::string& expected) {
  std::string shown;
  for (const auto& a : args) shown += a + " ";
  CAPTURE(shown);
  CliResult r = run_rotor(args);
  CAPTURE(r.err);
  CHECK(r.exit_code == 2);
  CHECK(r.err.rfind("rotor: error: ", 0) == 0);
  CHECK(r.err.find('\n') == r.err.size() - 1);
  CHECK(r.err.find(expected) != std::string::npos);
}

// A safetensors file taken apart into its header and payload, and put back together.
struct SafeTensorsFile {
  json header;
  std::string payload;

  static SafeTensorsFile read(const std::string& path) {
    std::string bytes = read_file(path);
    uint64_t n;
    std::memcpy(&n, bytes.data(), 8);
    return {json::parse(bytes.substr(8, n)), bytes.substr(8 + n)};
  }
  void write(const std::string& path) const {
    std::string h = header.dump();
    uint64_t n = h.size();
    write_file(path, std::string(reinterpret_cast<const char*>(&n), 8) + h + payload);
  }
};

// A private copy of the stories260K HF directory to break.
struct HfCopy {
  TempDir tmp;
  std::string dir = tmp.path();
  HfCopy() {
    const std::string src = shared_dir() + "/models/stories260K-hf-f32/";
    for (const char* f : {"config.json", "model.safetensors", "tokenizer.model"})
      write_file(tmp.file(f), read_file(src + f));
  }
  json config() const { return json::parse(read_file(tmp.file("config.json"))); }
  void set_config(const json& j) const { write_file(tmp.file("config.json"), j.dump()); }
  SafeTensorsFile tensors() const { return SafeTensorsFile::read(tmp.file("model.safetensors")); }
  void set_tensors(const SafeTensorsFile& f) const { f.write(tmp.file("model.safetensors")); }
};

}  // namespace

TEST_CASE("bad input: paths and llama2.c files") {
  const std::string good = llama2c_path("stories260K");
  const std::string bytes = read_file(good);
  TempDir tmp;
  write_file(tmp.file("tokenizer.model"),
             read_file(shared_dir() + "/models/stories260K/tokenizer.model"));

  expect_refusal({"info", tmp.file("nope.bin")}, "no such model file or directory");
  write_file(tmp.file("empty.bin"), "");
  expect_refusal({"info", tmp.file("empty.bin")}, "file is empty");
  write_file(tmp.file("short.bin"), bytes.substr(0, 10));
  expect_refusal({"info", tmp.file("short.bin")}, "shorter than a llama2.c header");
  write_file(tmp.file("text.bin"), std::string(4096, 'x'));
  expect_refusal({"info", tmp.file("text.bin")}, "not a llama2.c checkpoint (header)");
  write_file(tmp.file("cut.bin"), bytes.substr(0, bytes.size() / 2));
  expect_refusal({"run", "-m", tmp.file("cut.bin")}, "truncated llama2.c checkpoint");
  write_file(tmp.file("long.bin"), bytes + "extra");
  expect_refusal({"run", "-m", tmp.file("long.bin")}, "more than the header's shapes need");

  TempDir bare;  // a checkpoint without a tokenizer beside it
  write_file(bare.file("m.bin"), bytes);
  expect_refusal({"run", "-m", bare.file("m.bin")}, "tokenizer not found");
  write_file(bare.file("junk.model"), "not a tokenizer");
  expect_refusal({"run", "-m", bare.file("m.bin"), "--tokenizer", bare.file("junk.model")},
                 "not a SentencePiece model");
  expect_refusal({"run", "-m", good, "--tokenizer",
                  shared_dir() + "/models/llama2-tokenizer/tokenizer.model"},
                 "tokenizer has 32000 pieces but the model's vocabulary is 512");
}

TEST_CASE("bad input: Hugging Face directories") {
  {
    HfCopy hf;
    std::remove(hf.tmp.file("config.json").c_str());
    expect_refusal({"info", hf.dir}, "config.json: missing");
  }
  {
    HfCopy hf;
    write_file(hf.tmp.file("config.json"), "{\"hidden_size\": 64,");
    expect_refusal({"info", hf.dir}, "config.json: not valid JSON");
  }
  {
    HfCopy hf;
    json c = hf.config();
    c["architectures"] = {"MistralForCausalLM"};
    hf.set_config(c);
    expect_refusal({"info", hf.dir}, "unsupported architecture 'MistralForCausalLM'");
  }
  {
    HfCopy hf;
    json c = hf.config();
    c.erase("hidden_size");
    hf.set_config(c);
    expect_refusal({"info", hf.dir}, "missing field 'hidden_size'");
  }
  {
    HfCopy hf;
    json c = hf.config();
    c["num_key_value_heads"] = 3;
    hf.set_config(c);
    expect_refusal({"info", hf.dir}, "n_heads 8 is not a multiple of n_kv_heads 3");
  }
  {
    HfCopy hf;
    json c = hf.config();
    c["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
    hf.set_config(c);
    expect_refusal({"info", hf.dir}, "rope_scaling is not supported");
  }
  {
    HfCopy hf;
    SafeTensorsFile f = hf.tensors();
    f.header.erase("model.norm.weight");
    hf.set_tensors(f);
    expect_refusal({"info", hf.dir}, "missing tensor 'model.norm.weight'");
  }
  {
    HfCopy hf;
    SafeTensorsFile f = hf.tensors();
    f.header["model.layers.2.mlp.up_proj.weight"]["shape"] = {64, 172};
    hf.set_tensors(f);
    expect_refusal({"info", hf.dir},
                   "'model.layers.2.mlp.up_proj.weight' has shape [64, 172], expected [172, 64]");
  }
  {
    HfCopy hf;
    SafeTensorsFile f = hf.tensors();
    f.header["model.embed_tokens.weight"]["dtype"] = "I8";
    hf.set_tensors(f);
    expect_refusal({"info", hf.dir}, "unsupported dtype I8");
  }
  {
    HfCopy hf;
    SafeTensorsFile f = hf.tensors();
    f.payload.resize(f.payload.size() / 2);
    hf.set_tensors(f);
    expect_refusal({"info", hf.dir}, "past the end of the file (truncated?)");
  }
  {
    HfCopy hf;
    std::remove(hf.tmp.file("model.safetensors").c_str());
    expect_refusal({"info", hf.dir}, "no *.safetensors files");
  }
}

TEST_CASE("bad input: flags, commands and prompts") {
  const std::string m = llama2c_path("stories260K");
  expect_refusal({"frobnicate"}, "unknown command 'frobnicate'");
  expect_refusal({"run", "-m", m, "--bogus"}, "unknown option '--bogus'");
  expect_refusal({"run", "-m", m, "-n", "ten"}, "option '--n-tokens' needs an integer, got 'ten'");
  expect_refusal({"run", "-m", m, "--temp", "-1"}, "option '--temp' = -1 is out of range");
  expect_refusal({"run", "-m", m, "--top-p", "x"}, "option '--top-p' needs a number");
  expect_refusal({"run", "-m"}, "option '--model' needs a value");
  expect_refusal({"run", "-p", "hi"}, "no model given");
  expect_refusal({"run", "-m", m, "--json=yes"}, "option '--json' takes no value");
  expect_refusal({"run", "-m", m, "--ctx", "100000"}, "exceeds the model's 512 positions");
  expect_refusal({"run", "-m", m, "--ctx", "4", "-p", "Once upon a time there was a dog"},
                 "does not fit in the context of 4 tokens");
  expect_refusal({"ppl", "-m", m}, "no text given");
  expect_refusal({"ppl", "-m", m, "-f", "/nonexistent/text.txt"}, "cannot open");
  expect_refusal({"info"}, "missing argument MODEL");
  expect_refusal({"quantize", "-m", m}, "no output given");
  expect_refusal({"quantize", "-m", m, "-o", "/tmp/x.rotor", "--w-bits", "5"},
                 "option '--w-bits' = 5 is not one of 4, 8, 16, 32");
  expect_refusal({"quantize", "-m", m, "-o", "/tmp/x.rotor", "--rotation", "spin"},
                 "option '--rotation' = spin is not one of none, hadamard, psot, psot-layer");
  expect_refusal({"quantize", "-m", m, "-o", "/tmp/x.rotor", "--bdq", "--no-bdq"},
                 "options '--bdq' and '--no-bdq' contradict each other");
  expect_refusal({"quantize", "-m", m, "-o", "/tmp/x.rotor", "--hadamard-dir", "/nonexistent"},
                 "/nonexistent/had172.txt");
  expect_refusal({"quantize", "-m", m, "-o", "/tmp/x.rotor", "--group", "48"},
                 "option '--group' = 48 is not one of 0, 32, 64, 128");
  expect_refusal({"quantize", "-m", m, "-o", "/tmp/x.rotor", "--weights", "awq"},
                 "option '--weights' = awq is not one of rtn, gptq");
  expect_refusal({"quantize", "-m", m, "-o", "/tmp/x.rotor", "--classifier-bits", "2"},
                 "option '--classifier-bits' = 2 is not one of 4, 8, 16, 32");
  expect_refusal({"quantize", "-m", m, "-o", "/tmp/x.rotor", "--calib", "/nonexistent.txt"},
                 "/nonexistent.txt: cannot open");
  expect_refusal({"quantize", "-m", m, "-o", "/nonexistent/dir/x.rotor", "--weights", "rtn"},
                 "cannot create the output file");
}

TEST_CASE("bad input: a model file cut anywhere is refused, never read out of bounds") {
  // In-process, so AddressSanitizer watches every read of the mapping.
  const std::string bytes = read_file(llama2c_path("stories260K"));
  TempDir tmp;
  for (size_t cut : {size_t{0}, size_t{1}, size_t{27}, size_t{28}, size_t{29}, bytes.size() / 7,
                     bytes.size() / 3, bytes.size() - 4, bytes.size() - 1}) {
    CAPTURE(cut);
    write_file(tmp.file("cut.bin"), bytes.substr(0, cut));
    CHECK_THROWS_AS(load_model(tmp.file("cut.bin"), {"", false}), Error);
  }
  const std::string st = read_file(shared_dir() + "/models/stories260K-hf-f32/model.safetensors");
  write_file(tmp.file("config.json"),
             read_file(shared_dir() + "/models/stories260K-hf-f32/config.json"));
  for (size_t cut : {size_t{0}, size_t{4}, size_t{8}, size_t{100}, size_t{4000}, st.size() / 2,
                     st.size() - 1}) {
    CAPTURE(cut);
    write_file(tmp.file("model.safetensors"), st.substr(0, cut));
    CHECK_THROWS_AS(load_model(tmp.path(), {"", false}), Error);
  }
}
