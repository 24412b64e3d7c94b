// rotor bench: prefill and decode tokens/s of a model on this machine, with the machine's
// memory read bandwidth measured in the same run and the decode roofline it implies.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "engine/error.h"
#include "engine/kernels/kernels.h"
#include "engine/sampler.h"
#include "engine/session.h"
#include "engine/step_profile.h"
#include "engine/threads.h"
#include "tools/bandwidth_probe.h"
#include "tools/cli_model.h"
#include "tools/commands.h"

namespace rotor {

namespace {

using Clock = std::chrono::steady_clock;
double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

struct Spread {
  double median, min, max;
};
Spread spread(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  const double median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  return {median, v.front(), v.back()};
}

// The steps that took any time, in forward-pass order, with their share of the total.
std::vector<std::pair<const char*, double>> step_shares(const StepProfile& p) {
  std::vector<std::pair<const char*, double>> out;
  for (int s = 0; s < static_cast<int>(Step::kCount); ++s)
    if (p.seconds[s] > 0) out.emplace_back(step_name(static_cast<Step>(s)), p.seconds[s] / p.total());
  return out;
}

// The shares as a JSON object, and as one line of "step 12.3%" items.
nlohmann::json shares_json(const StepProfile& p) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, share] : step_shares(p)) j[name] = share;
  return j;
}
std::string shares_line(const StepProfile& p) {
  std::string line;
  for (const auto& [name, share] : step_shares(p)) {
    char item[64];
    std::snprintf(item, sizeof item, "%s%s %.1f%%", line.empty() ? "" : ", ", name, 100.0 * share);
    line += item;
  }
  return line;
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  Args args("bench", "-m MODEL [options]",
            "Measures prefill (P prompt tokens at once) and decode (N tokens one at a time,\n"
            "greedy) tokens/s over R repeats, the peak memory, the bytes of weights read per\n"
            "decoded token, the machine's memory read bandwidth (sampled right after each\n"
            "repeat's decode), and the fraction of the decode roofline reached = bytes/token ×\n"
            "tok/s ÷ bandwidth (the median over the repeats, each against its own sample). An\n"
            "untimed warm-up pass comes first; the bandwidth test then clears the caches, so each\n"
            "prefill starts cold, as a prompt after idle time does. The prompt is random token\n"
            "ids (fixed seed). --threads sizes the engine's thread pool; the bandwidth test uses\n"
            "as many threads. Each decoded token's time is reported too (median and slowest):\n"
            "a stall shows there, not in tokens/s. Also reported: how much of the model file\n"
            "the warm-up found in 2 MB pages (when mapped, the page cache's state, which changes\n"
            "decode speed).");
  add_model_options(args);
  args.option("prompt-tokens", 'p', "P", "prompt tokens for prefill", "512");
  args.option("n-tokens", 'n', "N", "tokens to decode", "128");
  args.option("repeat", 'r', "R", "repeats; medians and spread are reported", "3");
  args.option("depth", 'd', "D",
              "also decode N tokens after D positions of context (random cached keys and "
              "values, not a prefill) in each repeat, token by token in turn with its decode "
              "from an empty context, and report the slowdown (the median of the repeats' "
              "ratios)", "0");
  args.flag("profile", 0, "also time each step of the decode passes and report its share");
  args.flag("json", 0, "print one JSON object");
  if (!args.parse(argc, argv)) return 0;

  const int P = static_cast<int>(args.get_int("prompt-tokens", 512, 1, 1 << 24));
  const int N = static_cast<int>(args.get_int("n-tokens", 128, 0, 1 << 24));
  const int R = static_cast<int>(args.get_int("repeat", 3, 1, 1000));
  const int depth = static_cast<int>(args.get_int("depth", 0, 0, 1 << 24));
  LoadedModel lm = load_model_from_args(args);
  const Model& model = *lm.model;
  const ModelConfig& c = model.config;
  if (P + N > c.max_seq_len)
    throw Error("-p " + std::to_string(P) + " plus -n " + std::to_string(N) +
                " tokens exceed the model's " + std::to_string(c.max_seq_len) +
                " positions; ask for fewer");
  if (depth + N > c.max_seq_len)
    throw Error("--depth " + std::to_string(depth) + " plus -n " + std::to_string(N) +
                " tokens exceed the model's " + std::to_string(c.max_seq_len) +
                " positions; ask for fewer");
  if (depth > 0 && N == 0) throw Error("--depth measures decode: give -n N > 0 tokens");
  const int threads = static_cast<int>(args.get_int("threads", default_thread_count(), 1, 1024));

  std::mt19937 rng(1234);
  std::uniform_int_distribution<int> token(3, c.vocab_size - 1);
  std::vector<int> prompt(P);
  for (int& t : prompt) t = token(rng);

  Session session(model, P + N);
  // --depth: a second session whose cache holds `depth` positions of random keys and values
  // (filling it is not timed), decoded token by token in turn with the first, so that both
  // decodes see the same state of the machine, whose bandwidth can change within seconds.
  std::unique_ptr<Session> deep_session =
      depth > 0 ? std::make_unique<Session>(model, depth + N) : nullptr;
  // Timing the steps costs a clock read per step: the profiled passes are the decode ones only.
  StepProfile profile, depth_profile;
  const bool profiling = args.has("profile");
  auto run_prefill = [&] {
    session.reset();
    return session.prefill(prompt);
  };
  auto fill_deep = [&](int seed) {
    deep_session->reset();
    deep_session->fill_context(depth, seed);
  };
  // One decode step of a session: the next token is the argmax of its logits.
  struct Decoder {
    Session* session;
    int token;
    double seconds = 0.0;
    std::vector<double>* token_seconds = nullptr;  // each step's time, if given
  };
  auto step = [&](Decoder& d) {
    const auto t0 = Clock::now();
    const float* logits = d.session->decode(d.token);
    const double s = seconds(t0, Clock::now());
    d.seconds += s;
    if (d.token_seconds) d.token_seconds->push_back(s);
    d.token = argmax(logits, c.vocab_size);
  };
  // A warm-up pass first, as llama-bench has: it faults the mapped weights in and makes every
  // allocation the timed repeats make, so the peak memory read after it is theirs (the
  // bandwidth probe's buffer comes after it and is not counted).
  {
    const float* logits = run_prefill();
    if (N > 0) session.decode(argmax(logits, c.vocab_size));
    if (depth > 0) {
      fill_deep(0);
      deep_session->decode(prompt[0]);
    }
  }
  rusage ru;
  ::getrusage(RUSAGE_SELF, &ru);
  const double peak = ru.ru_maxrss * 1024.0;
  // How much of the model file the warm-up found in 2 MB pages: when mapped, the page cache's
  // state, which moves decode speed by up to ~15% on the development VM, is part of what a run
  // measured. Every file of a model is loaded the same way.
  size_t file_bytes = 0, huge = 0;
  for (const auto& m : model.mappings) {
    file_bytes += m->size();
    huge += m->huge_page_bytes();
  }
  const bool read_into_memory =
      !model.mappings.empty() && model.mappings.front()->access() == FileAccess::kRead;
  const double huge_fraction = file_bytes > 0 ? static_cast<double>(huge) / file_bytes : 0.0;
  BandwidthProbe probe(threads);

  const double bytes_per_token = static_cast<double>(model.weight_bytes_per_token());
  std::vector<double> prefill, decode, deep, bandwidth, roofline, slowdowns, token_seconds;
  for (int r = 0; r < R; ++r) {
    const auto t0 = Clock::now();
    const float* logits = run_prefill();
    prefill.push_back(P / seconds(t0, Clock::now()));
    if (depth > 0) fill_deep(r);
    Decoder empty{&session, argmax(logits, c.vocab_size), 0.0, &token_seconds};
    Decoder at_depth{deep_session.get(), prompt[0]};
    if (profiling) session.set_profile(&profile);
    if (profiling && depth > 0) deep_session->set_profile(&depth_profile);
    for (int i = 0; i < N; ++i) {
      if (depth > 0 && i % 2 == 1) step(at_depth);  // the deep one first in every other pair
      step(empty);
      if (depth > 0 && i % 2 == 0) step(at_depth);
    }
    session.set_profile(nullptr);
    if (depth > 0) deep_session->set_profile(nullptr);
    if (N > 0) decode.push_back(N / empty.seconds);
    // The bandwidth right after the decode it is set against.
    bandwidth.push_back(probe.sample());
    roofline.push_back(N > 0 ? bytes_per_token * decode.back() / bandwidth.back() : 0.0);
    if (depth > 0) {
      deep.push_back(N / at_depth.seconds);
      slowdowns.push_back(at_depth.seconds / empty.seconds - 1.0);
    }
  }
  const Spread pre = spread(prefill);
  const Spread dec = N > 0 ? spread(decode) : Spread{0, 0, 0};
  const Spread token_time = N > 0 ? spread(token_seconds) : Spread{0, 0, 0};  // seconds
  const Spread at_depth = depth > 0 ? spread(deep) : Spread{0, 0, 0};
  // How much slower decode is at depth than from an empty context: the median of the repeats'.
  const double slowdown = depth > 0 ? spread(slowdowns).median : 0.0;
  const Spread bw = spread(bandwidth);
  const double roof = spread(roofline).median;

  if (args.has("json")) {
    auto s = [](const Spread& x) {
      return nlohmann::json{{"median", x.median}, {"min", x.min}, {"max", x.max}};
    };
    nlohmann::json j = {{"model", model.path},           {"format", model.format},
                        {"dtype", model.dtype},          {"isa", kernels().name},
                        {"threads", threads},            {"prompt_tokens", P},
                        {"decode_tokens", N},            {"repeat", R},
                        {"prefill_tok_s", s(pre)},       {"decode_tok_s", s(dec)},
                        {"decode_token_ms", s({1e3 * token_time.median, 1e3 * token_time.min,
                                               1e3 * token_time.max})},
                        {"peak_rss_bytes", peak},        {"weight_bytes_per_token", bytes_per_token},
                        {"read_bandwidth_bytes_s", s(bw)}, {"roofline_fraction", roof},
                        {"model_file_bytes", file_bytes},
                        {"model_file_access", read_into_memory ? "read" : "mmap"},
                        {"model_file_in_2mb_pages", huge_fraction}};
    if (profiling) j["decode_step_share"] = shares_json(profile);
    if (depth > 0) {
      j["depth"] = depth;
      j["decode_at_depth_tok_s"] = s(at_depth);
      j["depth_slowdown"] = slowdown;
      if (profiling) j["decode_at_depth_step_share"] = shares_json(depth_profile);
    }
    std::puts(j.dump().c_str());
    return 0;
  }
  std::printf("model      %s (%s, %s), kernels %s, %d thread%s\n", model.path.c_str(),
              model.format.c_str(), model.dtype.c_str(), kernels().name, threads,
              threads == 1 ? "" : "s");
  std::printf("prefill    %d tokens: %.1f tok/s median (%.1f .. %.1f over %d runs)\n", P,
              pre.median, pre.min, pre.max, R);
  std::printf("decode     %d tokens: %.1f tok/s median (%.1f .. %.1f); a token %.2f ms median, "
              "%.2f ms at most\n",
              N, dec.median, dec.min, dec.max, 1e3 * token_time.median, 1e3 * token_time.max);
  if (depth > 0)
    std::printf("depth      %d tokens after %d positions: %.1f tok/s median (%.1f .. %.1f), "
                "%.1f%% slower than from an empty context\n",
                N, depth, at_depth.median, at_depth.min, at_depth.max, 100.0 * slowdown);
  if (profiling) {
    std::printf("steps      share of decode time: %s\n", shares_line(profile).c_str());
    if (depth > 0)
      std::printf("           at depth %d: %s\n", depth, shares_line(depth_profile).c_str());
  }
  std::printf("memory     peak %.1f MB; %.3f MB of weights read per decoded token\n", peak / 1e6,
              bytes_per_token / 1e6);
  if (file_bytes > 0)
    std::printf("pages      %.1f%% of the %.1f MB model file %s 2 MB pages\n",
                100.0 * huge_fraction, file_bytes / 1e6,
                read_into_memory ? "read (--no-mmap) into" : "mapped in");
  std::printf("roofline   read bandwidth %.1f GB/s median (%.1f .. %.1f, after each run) -> "
              "%.1f%% of the decode roofline\n",
              bw.median / 1e9, bw.min / 1e9, bw.max / 1e9, 100.0 * roof);
  return 0;
}

}  // namespace rotor
