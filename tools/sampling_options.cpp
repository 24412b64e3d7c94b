#include "tools/sampling_options.h"

#include <random>

namespace rotor {

void add_sampling_options(Args& args) {
  const SamplingParams d;
  args.option("temp", 0, "T", "sampling temperature; 0 = greedy", std::to_string(d.temperature).substr(0, 3));
  args.option("top-k", 0, "K", "sample among the K most likely tokens; 0 = all",
              std::to_string(d.top_k));
  args.option("top-p", 0, "P", "sample among the most likely tokens whose probability sums to P",
              std::to_string(d.top_p).substr(0, 4));
  args.option("min-p", 0, "P", "drop tokens less likely than P times the most likely; 0 = off",
              "0");
  args.option("repeat-penalty", 0, "R",
              "divide the logits of recently seen tokens by R (multiply if negative); 1 = off",
              "1");
  args.option("repeat-last-n", 0, "N", "how many recent tokens the repetition penalty counts",
              std::to_string(d.repeat_last_n));
  args.option("seed", 0, "S", "random seed, for reproducible sampling", "random");
}

SamplingParams sampling_from_args(const Args& args) {
  SamplingParams p;
  p.temperature = static_cast<float>(args.get_float("temp", p.temperature, 0.0, 100.0));
  p.top_k = static_cast<int>(args.get_int("top-k", p.top_k, 0, 1 << 24));
  p.top_p = static_cast<float>(args.get_float("top-p", p.top_p, 1e-6, 1.0));
  p.min_p = static_cast<float>(args.get_float("min-p", p.min_p, 0.0, 1.0));
  p.repeat_penalty =
      static_cast<float>(args.get_float("repeat-penalty", p.repeat_penalty, 0.01, 100.0));
  p.repeat_last_n = static_cast<int>(args.get_int("repeat-last-n", p.repeat_last_n, 0, 1 << 24));
  p.seed = args.has("seed") ? static_cast<uint64_t>(args.get_int("seed", 0, 0, INT64_MAX))
                            : std::random_device{}();
  return p;
}

}  // namespace rotor
