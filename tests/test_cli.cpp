// The `rotor` command's contract as scripts use it: run --json fields, streaming text, chat
// over a pipe, info, and --help for every command.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "tests/helpers.h"

using namespace rotor::test;

TEST_CASE("cli: run --json reports prompt ids with BOS, generated ids and text") {
  const auto golden =
      nlohmann::json::parse(read_file(shared_dir() + "/golden/stories260K/golden.json"));
  const auto& c = golden["cases"][0];
  CliResult r = run_rotor({"run", "-m", llama2c_path("stories260K"), "-p", c["prompt"], "-n",
                           "48", "--temp", "0", "--json"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["prompt_tokens"] == c["prompt_tokens"]);
  CHECK(j["tokens"] == c["greedy_tokens"]);
  const std::string full = c["text"];
  CHECK(c["prompt"].get<std::string>() + j["text"].get<std::string>() == full);
  CHECK(j["prefill_tok_s"].get<double>() > 0);
  CHECK(j["decode_tok_s"].get<double>() > 0);
}

TEST_CASE("cli: run streams the prompt and the continuation; sampling is seeded") {
  const std::string m = llama2c_path("stories260K");
  CliResult greedy = run_rotor({"run", "-m", m, "-p", "Once upon a time", "-n", "20", "--temp", "0"});
  REQUIRE(greedy.exit_code == 0);
  CHECK(greedy.out.rfind("Once upon a time, there was a little girl", 0) == 0);

  CliResult a = run_rotor({"run", "-m", m, "-n", "30", "--seed", "5", "--json"});
  CliResult b = run_rotor({"run", "-m", m, "-n", "30", "--seed", "5", "--json"});
  REQUIRE(a.exit_code == 0);
  auto ja = nlohmann::json::parse(a.out), jb = nlohmann::json::parse(b.out);
  CHECK(ja["tokens"] == jb["tokens"]);
  CHECK(ja["prompt_tokens"] == nlohmann::json::array({1}));
  CHECK(ja["tokens"].size() > 0);
}

TEST_CASE("cli: run stops when the context is full") {
  CliResult r = run_rotor({"run", "-m", llama2c_path("stories260K"), "--ctx", "16", "-n", "100",
                           "--temp", "0", "--json"});
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  // 16 positions fill the context; the token predicted after the last of them is still shown.
  CHECK(j["prompt_tokens"].size() + j["tokens"].size() == 17);
}

TEST_CASE("cli: chat answers each piped line and keeps the history") {
  const std::string m = llama2c_path("stories260K");
  CliResult single = run_rotor({"run", "-m", m, "-p", "Once upon a time", "-n", "12", "--temp",
                                "0", "--json"});
  REQUIRE(single.exit_code == 0);
  const std::string first_answer = nlohmann::json::parse(single.out)["text"];

  CliResult chat = run_rotor({"chat", "-m", m, "-n", "12", "--temp", "0"},
                             "Once upon a time\nThe dog said\n");
  REQUIRE_MESSAGE(chat.exit_code == 0, chat.err);
  // Two turns, two answer lines; the first equals a plain run of the same prompt.
  const size_t nl = chat.out.find('\n');
  REQUIRE(nl != std::string::npos);
  CHECK(chat.out.substr(0, nl) == first_answer);
  CHECK(chat.out.find('\n', nl + 1) != std::string::npos);
}

TEST_CASE("cli: info and --help") {
  CliResult info = run_rotor({"info", shared_dir() + "/models/stories260K-hf-bf16", "--json"});
  REQUIRE(info.exit_code == 0);
  auto j = nlohmann::json::parse(info.out);
  CHECK(j["format"] == "hf-safetensors");
  CHECK(j["dtype"] == "bf16");
  CHECK(j["n_kv_heads"] == 4);
  CHECK(j["parameters"] == 260032);

  CliResult top = run_rotor({"--help"});
  CHECK(top.exit_code == 0);
  for (const char* cmd : {"run", "chat", "ppl", "info"}) {
    CHECK(top.out.find(cmd) != std::string::npos);
    CliResult h = run_rotor({cmd, "--help"});
    CAPTURE(cmd);
    CHECK(h.exit_code == 0);
    CHECK(h.out.rfind(std::string("Usage: rotor ") + cmd, 0) == 0);
  }
  CliResult run_help = run_rotor({"run", "--help"});
  for (const char* flag : {"--model", "--prompt", "--n-tokens", "--temp", "--top-k", "--top-p",
                           "--seed", "--threads", "--json", "--ctx", "--tokenizer"})
    CHECK(run_help.out.find(flag) != std::string::npos);
}
