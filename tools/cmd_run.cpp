// rotor run: generate text after BOS + prompt, streamed, or one JSON object with --json.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/generate.h"
#include "tools/cli_model.h"
#include "tools/commands.h"
#include "tools/sampling_options.h"

namespace rotor {

int cmd_run(int argc, char** argv) {
  Args args("run", "-m MODEL [-p PROMPT] [options]",
            "Generates N tokens after BOS + PROMPT and streams the text to stdout (the prompt\n"
            "is echoed first). Stops early at the end-of-sequence token or when the context is\n"
            "full. Timings go to stderr.");
  add_model_options(args);
  args.option("prompt", 'p', "TEXT", "prompt text", "empty: generate from BOS alone");
  args.option("n-tokens", 'n', "N", "tokens to generate", "256");
  args.option("ctx", 'c', "N", "context length in tokens", "the model's max positions");
  add_sampling_options(args);
  args.flag("json", 0,
            "print one JSON object instead of streaming: prompt_tokens (with BOS), tokens\n"
            "                            (generated ids, EOS excluded), text (generated text only),\n"
            "                            prefill_tok_s, decode_tok_s");
  if (!args.parse(argc, argv)) return 0;

  const int n_tokens = static_cast<int>(args.get_int("n-tokens", 256, 0, 1 << 24));
  const SamplingParams sampling = sampling_from_args(args);
  const int ctx = static_cast<int>(args.get_int("ctx", 0, 0, 1 << 24));
  LoadedModel lm = load_model_from_args(args);
  const ModelConfig& c = lm.model->config;
  Session session(*lm.model, ctx);

  const std::string prompt = args.get("prompt");
  std::vector<int> prompt_ids = {c.bos_id};
  for (int id : lm.tokenizer->encode(prompt)) prompt_ids.push_back(id);
  if (static_cast<int>(prompt_ids.size()) > session.ctx())
    throw Error("prompt of " + std::to_string(prompt_ids.size()) +
                " tokens (with BOS) does not fit in the context of " +
                std::to_string(session.ctx()) + " tokens");

  const bool json = args.has("json");
  StreamDecoder stream(*lm.tokenizer, prompt.empty());
  std::string text;
  std::vector<int> generated;
  if (!json) {
    std::fputs(prompt.c_str(), stdout);
    std::fflush(stdout);
  }
  Sampler sampler(sampling);
  GenerationStats stats = generate(session, sampler, prompt_ids, n_tokens, [&](int id) {
    generated.push_back(id);
    std::string piece = stream.push(id);
    text += piece;
    if (!json && !piece.empty()) {
      std::fputs(piece.c_str(), stdout);
      std::fflush(stdout);
    }
  });
  std::string tail = stream.flush();
  text += tail;

  if (json) {
    nlohmann::json out = {{"prompt_tokens", prompt_ids},
                          {"tokens", generated},
                          {"text", text},
                          {"prefill_tok_s", stats.prefill_tok_s()},
                          {"decode_tok_s", stats.decode_tok_s()}};
    std::puts(out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::fputs((tail + "\n").c_str(), stdout);
    std::fflush(stdout);
    std::fprintf(stderr, "[prefill %d tokens: %.1f tok/s, decode %d tokens: %.1f tok/s%s]\n",
                 stats.prompt_tokens, stats.prefill_tok_s(), stats.generated,
                 stats.decode_tok_s(), stats.context_full ? ", stopped: context full" : "");
  }
  return 0;
}

}  // namespace rotor
