// The `rotor` command's contract as scripts use it: run --json fields, streaming text, chat
// over a pipe, info, and --help for every command.
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "engine/format/rotor_format.h"
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
  // --no-mmap reads the checkpoint into memory instead of mapping it: the same text.
  CliResult read = run_rotor(
      {"run", "-m", m, "-p", "Once upon a time", "-n", "20", "--temp", "0", "--no-mmap"});
  REQUIRE_MESSAGE(read.exit_code == 0, read.err);
  CHECK(read.out == greedy.out);

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

TEST_CASE("cli: chat with a template, commands and a full context over a pipe") {
  const std::string m = llama2c_path("stories260K");
  // /stats, /reset and /help are commands, not turns; after /reset the same line gets the same
  // (greedy) answer as at the start.
  CliResult chat = run_rotor({"chat", "-m", m, "-n", "10", "--temp", "0", "--template", "chatml",
                              "--system", "Tell stories."},
                             "Once upon a time\n/stats\n/reset\nOnce upon a time\n/help\n");
  REQUIRE_MESSAGE(chat.exit_code == 0, chat.err);
  std::vector<std::string> lines;
  std::istringstream in(chat.out);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  REQUIRE(lines.size() >= 4);
  CHECK(lines[1].rfind("[last answer: ", 0) == 0);
  CHECK(lines[2] == "[conversation reset]");
  CHECK(lines[3] == lines[0]);
  CHECK(chat.out.find("/reset") != std::string::npos);  // the /help text

  // A small context fills: the oldest turns go, with a note, and every line is answered.
  std::string input;
  for (int i = 0; i < 8; ++i) input += "Once upon a time there was a cat\n";
  CliResult full = run_rotor({"chat", "-m", m, "-n", "20", "--temp", "0", "--ctx", "64",
                              "--template", "llama2", "--system", "Be nice."},
                             input);
  REQUIRE_MESSAGE(full.exit_code == 0, full.err);
  CHECK(std::count(full.out.begin(), full.out.end(), '\n') == 8);
  CHECK(full.err.find("dropped the 1 oldest turn") != std::string::npos);

  CliResult bad = run_rotor({"chat", "-m", m, "--template", "vicuna"});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("unknown chat template") != std::string::npos);
}

namespace {
std::string shell(const std::string& cmd) {
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

// A tmux server of its own, killed at the end.
class Tmux {
 public:
  explicit Tmux(const std::string& command)
      : socket_("rotor-test-" + std::to_string(::getpid())) {
    shell("tmux -L " + socket_ + " new-session -d -s t -x 160 -y 50 '" + command + "' 2>&1");
  }
  ~Tmux() { shell("tmux -L " + socket_ + " kill-server 2>/dev/null"); }
  void keys(const std::string& keys) { shell("tmux -L " + socket_ + " send-keys -t t " + keys); }
  std::string screen() { return shell("tmux -L " + socket_ + " capture-pane -p -t t -S -200"); }
  // Waits (up to 60 s) until the screen shows `text` `count` times (tmux drops trailing
  // spaces: the prompt "> " shows as a line starting with ">").
  bool wait_for(const std::string& text, int count = 1) {
    for (int i = 0; i < 3000; ++i) {
      const std::string s = screen();
      int n = 0;
      for (size_t at = s.find(text); at != std::string::npos; at = s.find(text, at + 1)) ++n;
      if (n >= count) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

 private:
  std::string socket_;
};
}  // namespace

TEST_CASE("cli: chat under a terminal: Ctrl-C stops the answer, a second one exits") {
  // 20 ms per token: a 150-token answer takes 3 s, so Ctrl-C lands mid-answer.
  Tmux tmux(rotor_bin() + " chat -m " + llama2c_path("stories260K") +
            " --temp 0 -n 150 --token-delay-ms 20; echo EXIT=$?; sleep 60");
  REQUIRE_MESSAGE(tmux.wait_for("\n>"), tmux.screen());
  tmux.keys("'Once upon a time' Enter");
  REQUIRE_MESSAGE(tmux.wait_for("there was"), tmux.screen());
  tmux.keys("C-c");
  REQUIRE_MESSAGE(tmux.wait_for("[answer stopped]"), tmux.screen());
  REQUIRE_MESSAGE(tmux.wait_for("\n>", 2), tmux.screen());
  tmux.keys("/stats Enter");
  REQUIRE_MESSAGE(tmux.wait_for("finish: cancelled"), tmux.screen());
  const std::string s = tmux.screen();
  const size_t at = s.find("[last answer: ");
  REQUIRE(at != std::string::npos);
  CHECK(std::atoi(s.c_str() + at + 14) < 150);
  // The conversation goes on after a stopped answer.
  tmux.keys("'The dog' Enter");
  REQUIRE_MESSAGE(tmux.wait_for("\n>", 4), tmux.screen());
  // At the prompt (the Ctrl-C after the one that stopped an answer), Ctrl-C leaves.
  tmux.keys("C-c");
  CHECK_MESSAGE(tmux.wait_for("EXIT=0"), tmux.screen());
}

TEST_CASE("cli: info and --help") {
  CliResult info = run_rotor({"info", shared_dir() + "/models/stories260K-hf-bf16", "--json"});
  REQUIRE(info.exit_code == 0);
  auto j = nlohmann::json::parse(info.out);
  CHECK(j["format"] == "hf-safetensors");
  CHECK(j["dtype"] == "bf16");
  CHECK(j["n_kv_heads"] == 4);
  CHECK(j["parameters"] == 260032);

  CliResult version = run_rotor({"--version"});
  CHECK(version.exit_code == 0);
  CHECK(version.out.find("format version " + std::to_string(rotor::format::kVersion)) != std::string::npos);

  CliResult top = run_rotor({"--help"});
  CHECK(top.exit_code == 0);
  for (const char* cmd : {"run", "chat", "ppl", "info", "serve", "quantize", "bench"}) {
    CHECK(top.out.find(cmd) != std::string::npos);
    CliResult h = run_rotor({cmd, "--help"});
    CAPTURE(cmd);
    CHECK(h.exit_code == 0);
    CHECK(h.out.rfind(std::string("Usage: rotor ") + cmd, 0) == 0);
  }
  CliResult run_help = run_rotor({"run", "--help"});
  for (const char* flag : {"--model", "--prompt", "--n-tokens", "--temp", "--top-k", "--top-p",
                           "--seed", "--threads", "--json", "--ctx", "--tokenizer", "--no-mmap"})
    CHECK(run_help.out.find(flag) != std::string::npos);
}

TEST_CASE("cli: bench reports speeds, memory, bandwidth and roofline") {
  CliResult r = run_rotor({"bench", "-m", llama2c_path("stories260K"), "-p", "32", "-n", "16",
                           "-r", "2", "-t", "1", "--json"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["prompt_tokens"] == 32);
  CHECK(j["decode_tokens"] == 16);
  CHECK(j["repeat"] == 2);
  CHECK(j["prefill_tok_s"]["median"].get<double>() > 0);
  CHECK(j["decode_tok_s"]["min"].get<double>() <= j["decode_tok_s"]["max"].get<double>());
  CHECK(j["peak_rss_bytes"].get<double>() > 1e6);
  CHECK(j["weight_bytes_per_token"].get<double>() > 1e6);  // ~1 MB of fp32 weights
  // One bandwidth sample per repeat; the roofline fraction is the median of the repeats' own
  // (each repeat's decode against its sample), so it lies within what the spreads allow.
  const auto& bw = j["read_bandwidth_bytes_s"];
  CHECK(bw["min"].get<double>() > 1e8);
  CHECK(bw["min"].get<double>() <= bw["median"].get<double>());
  CHECK(bw["median"].get<double>() <= bw["max"].get<double>());
  const double bytes = j["weight_bytes_per_token"].get<double>();
  const double roofline = j["roofline_fraction"].get<double>();
  CHECK(roofline >= bytes * j["decode_tok_s"]["min"].get<double>() / bw["max"].get<double>() *
                        (1 - 1e-9));
  CHECK(roofline <= bytes * j["decode_tok_s"]["max"].get<double>() / bw["min"].get<double>() *
                        (1 + 1e-9));
  // Each decoded token's time: the slowest is no faster than the fastest repeat's mean token,
  // the quickest no slower than the slowest repeat's.
  const auto& token_ms = j["decode_token_ms"];
  CHECK(token_ms["min"].get<double>() <= token_ms["median"].get<double>());
  CHECK(token_ms["median"].get<double>() <= token_ms["max"].get<double>());
  CHECK(token_ms["max"].get<double>() >=
        1e3 / j["decode_tok_s"]["max"].get<double>() * (1 - 1e-9));
  CHECK(token_ms["min"].get<double>() <=
        1e3 / j["decode_tok_s"]["min"].get<double>() * (1 + 1e-9));
  // The model file's mapping: all of it, some fraction of it in 2 MB pages.
  CHECK(j["model_file_bytes"].get<double>() ==
        static_cast<double>(read_file(llama2c_path("stories260K")).size()));
  CHECK(j["model_file_access"] == "mmap");
  CHECK(j["model_file_in_2mb_pages"].get<double>() >= 0.0);
  CHECK(j["model_file_in_2mb_pages"].get<double>() <= 1.0);
  CliResult read = run_rotor({"bench", "-m", llama2c_path("stories260K"), "-p", "8", "-n", "4",
                              "-r", "1", "-t", "1", "--no-mmap", "--json"});
  REQUIRE_MESSAGE(read.exit_code == 0, read.err);
  auto jr = nlohmann::json::parse(read.out);
  CHECK(jr["model_file_access"] == "read");
  CHECK(jr["model_file_bytes"] == j["model_file_bytes"]);
  CHECK(jr["model_file_in_2mb_pages"].get<double>() >= 0.0);
  CHECK(jr["model_file_in_2mb_pages"].get<double>() <= 1.0);

  CliResult too_long = run_rotor({"bench", "-m", llama2c_path("stories260K"), "-p", "500",
                                  "-n", "100"});
  CHECK(too_long.exit_code == 2);
  CHECK(too_long.err.find("exceed the model's 512 positions") != std::string::npos);

  // --depth: decode again after that many cached positions, and the slowdown (with one repeat,
  // of its two decodes); --profile: every step's share of decode time, for each kind of decode.
  CliResult deep = run_rotor({"bench", "-m", llama2c_path("stories260K"), "-p", "8", "-n", "8",
                              "-r", "1", "-t", "1", "--depth", "400", "--profile", "--json"});
  REQUIRE_MESSAGE(deep.exit_code == 0, deep.err);
  auto d = nlohmann::json::parse(deep.out);
  CHECK(d["depth"] == 400);
  const double at_depth = d["decode_at_depth_tok_s"]["median"].get<double>();
  CHECK(at_depth > 0);
  CHECK(d["depth_slowdown"].get<double>() ==
        doctest::Approx(d["decode_tok_s"]["median"].get<double>() / at_depth - 1.0));
  // One repeat: its decode against its own bandwidth sample.
  CHECK(d["roofline_fraction"].get<double>() ==
        doctest::Approx(d["weight_bytes_per_token"].get<double>() *
                        d["decode_tok_s"]["median"].get<double>() /
                        d["read_bandwidth_bytes_s"]["median"].get<double>()));
  double total = 0.0;
  for (const auto& [step, share] : d["decode_step_share"].items()) {
    CAPTURE(step);
    CHECK(share.get<double>() > 0.0);
    total += share.get<double>();
  }
  CHECK(total == doctest::Approx(1.0));
  for (const char* step : {"embedding", "rmsnorm", "q/k/v proj", "attention", "o_proj",
                           "gate/up proj", "down_proj", "classifier"})
    CHECK(d["decode_step_share"].contains(step));
  // The decodes at depth have a profile of their own, where attention over 400 positions takes
  // a larger share than over the 8 to 16 of the empty-context decode.
  double deep_total = 0.0;
  for (const auto& [step, share] : d["decode_at_depth_step_share"].items()) deep_total += share.get<double>();
  CHECK(deep_total == doctest::Approx(1.0));
  CHECK(d["decode_at_depth_step_share"]["attention"].get<double>() >
        d["decode_step_share"]["attention"].get<double>());
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"--depth", "500", "-n", "100"}, {"--depth", "10", "-n", "0"}}) {
    std::vector<std::string> args = {"bench", "-m", llama2c_path("stories260K"), "-p", "8"};
    args.insert(args.end(), bad.begin(), bad.end());
    CliResult r2 = run_rotor(args);
    CAPTURE(r2.err);
    CHECK(r2.exit_code == 2);
    CHECK(r2.err.find("--depth") != std::string::npos);
  }
}
