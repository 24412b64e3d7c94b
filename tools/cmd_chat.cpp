// rotor chat: read a line, answer it, repeat; the conversation stays in the KV cache.
// Plain-text turns for now: the user's line is appended to the conversation and the model
// continues it. (Chat templates come later.)
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "engine/generate.h"
#include "tools/cli_model.h"
#include "tools/commands.h"
#include "tools/sampling_options.h"

namespace rotor {

int cmd_chat(int argc, char** argv) {
  Args args("chat", "-m MODEL [options]",
            "Interactive chat: each line read from stdin is one user turn; the answer streams\n"
            "to stdout. History is kept in the KV cache; when the context is full the\n"
            "conversation starts over (and says so). Ends at end of input.");
  add_model_options(args);
  args.option("n-tokens", 'n', "N", "maximum tokens per answer", "256");
  args.option("ctx", 'c', "N", "context length in tokens", "the model's max positions");
  add_sampling_options(args);
  if (!args.parse(argc, argv)) return 0;

  const int max_answer = static_cast<int>(args.get_int("n-tokens", 256, 1, 1 << 24));
  const SamplingParams sampling = sampling_from_args(args);
  const int ctx = static_cast<int>(args.get_int("ctx", 0, 0, 1 << 24));
  LoadedModel lm = load_model_from_args(args);
  Session session(*lm.model, ctx);
  Sampler sampler(sampling);
  const bool interactive = ::isatty(STDIN_FILENO) != 0;

  std::string line;
  while (true) {
    if (interactive) {
      std::fputs("> ", stdout);
      std::fflush(stdout);
    }
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    std::vector<int> turn;
    if (session.pos() == 0) turn.push_back(lm.model->config.bos_id);
    for (int id : lm.tokenizer->encode(session.pos() == 0 ? line : "\n" + line)) turn.push_back(id);
    if (session.pos() + static_cast<int>(turn.size()) >= session.ctx()) {
      std::fputs("[context full: starting a new conversation]\n", stderr);
      session.reset();
      turn.clear();
      turn.push_back(lm.model->config.bos_id);
      for (int id : lm.tokenizer->encode(line)) turn.push_back(id);
      if (static_cast<int>(turn.size()) >= session.ctx()) {
        std::fprintf(stderr, "[this line is %zu tokens, too long for the context of %d]\n",
                     turn.size(), session.ctx());
        continue;
      }
    }
    StreamDecoder stream(*lm.tokenizer);
    GenerationStats stats = generate(session, sampler, turn, max_answer, [&](int id) {
      std::fputs(stream.push(id).c_str(), stdout);
      std::fflush(stdout);
    });
    std::fputs((stream.flush() + "\n").c_str(), stdout);
    std::fflush(stdout);
    if (stats.context_full) {
      std::fputs("[context full: starting a new conversation]\n", stderr);
      session.reset();
    }
  }
  return 0;
}

}  // namespace rotor
