// rotor chat: read a line, answer it, repeat. The conversation is rendered with a chat
// template and kept in the KV cache (each turn runs only its own tokens); when the context
// fills, the oldest turns are dropped (the system prompt stays) and a note goes to stderr.
// Ctrl-C stops the current answer; a second Ctrl-C (or one at the prompt) exits.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include "engine/error.h"
#include "tools/chat_session.h"
#include "tools/cli_model.h"
#include "tools/commands.h"
#include "tools/sampling_options.h"
#include "tools/template_options.h"

namespace rotor {

namespace {

volatile sig_atomic_t g_answering = 0;
volatile sig_atomic_t g_cancel = 0;

void on_sigint(int) {
  if (g_answering && !g_cancel) {
    g_cancel = 1;
    return;
  }
  static const char msg[] = "\n";
  ssize_t ignored = ::write(STDOUT_FILENO, msg, 1);
  (void)ignored;
  ::_exit(0);
}

const char kHelp[] =
    "commands:\n"
    "  /reset   forget the conversation (the system prompt stays)\n"
    "  /stats   tokens and speed of the last answer\n"
    "  /help    this list\n"
    "  /quit    leave (so does end of input)\n"
    "Ctrl-C stops an answer; Ctrl-C again leaves.\n";

}  // namespace

int cmd_chat(int argc, char** argv) {
  Args args("chat", "-m MODEL [options]",
            "Interactive chat: each line read from stdin is one user turn; the answer streams\n"
            "to stdout. History is kept in the KV cache; when the context is full the oldest\n"
            "turns are dropped (and a note says so). Lines starting with / are commands\n"
            "(/help). Ends at end of input or /quit. Ctrl-C stops an answer, twice exits.");
  add_model_options(args);
  add_template_options(args);
  args.option("n-tokens", 'n', "N", "maximum tokens per answer", "256");
  args.option("ctx", 'c', "N", "context length in tokens", "the model's max positions");
  args.option("stop", 0, "TEXT", "end an answer where the model writes TEXT (besides the\n"
              "                            template's own turn markers)");
  args.option("token-delay-ms", 0, "MS", "pause after each streamed token (for testing)", "0");
  add_sampling_options(args);
  if (!args.parse(argc, argv)) return 0;

  const int token_delay_ms = static_cast<int>(args.get_int("token-delay-ms", 0, 0, 60000));
  const int max_answer = static_cast<int>(args.get_int("n-tokens", 256, 1, 1 << 24));
  const SamplingParams sampling = sampling_from_args(args);
  const int ctx = static_cast<int>(args.get_int("ctx", 0, 0, 1 << 24));
  check_template_option(args);
  LoadedModel lm = load_model_from_args(args);
  std::string why;
  ChatTemplate tmpl = template_from_args(args, *lm.model, &why);
  ChatSession chat(*lm.model, *lm.tokenizer, tmpl, ctx);
  Sampler sampler(sampling);
  const bool interactive = ::isatty(STDIN_FILENO) != 0;
  if (interactive)
    std::fprintf(stderr, "[template %s: %s; /help lists the commands]\n", tmpl.name().c_str(),
                 why.c_str());

  struct sigaction sa = {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);

  AnswerOptions opts;
  opts.max_tokens = max_answer;
  if (args.has("stop")) opts.stop.push_back(args.get("stop"));
  opts.cancelled = [] { return g_cancel != 0; };
  Answer last;
  bool answered = false;

  std::string line;
  while (true) {
    if (interactive) {
      std::fputs("> ", stdout);
      std::fflush(stdout);
    }
    if (!std::getline(std::cin, line)) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (line[0] == '/') {
      if (line == "/quit" || line == "/exit") break;
      if (line == "/help") {
        std::fputs(kHelp, stdout);
      } else if (line == "/reset") {
        chat.reset();
        sampler.clear_history();
        std::fputs("[conversation reset]\n", stdout);
      } else if (line == "/stats") {
        if (!answered)
          std::fputs("[no answer yet]\n", stdout);
        else
          std::printf("[last answer: %zu tokens, %.1f tok/s; prompt %d tokens (%d run, the rest "
                      "from the cache), %.1f tok/s; finish: %s]\n",
                      last.tokens.size(), last.decode_tok_s(), last.prompt_tokens,
                      last.prefilled,
                      last.prefill_seconds > 0 ? last.prefilled / last.prefill_seconds : 0.0,
                      last.finish_reason.c_str());
      } else {
        std::printf("[unknown command %s; /help lists them]\n", line.c_str());
      }
      std::fflush(stdout);
      continue;
    }
    g_cancel = 0;
    g_answering = 1;
    try {
      last = chat.say(line, sampler, opts, [&](const std::string& piece) {
        std::fputs(piece.c_str(), stdout);
        std::fflush(stdout);
        if (token_delay_ms > 0)
          std::this_thread::sleep_for(std::chrono::milliseconds(token_delay_ms));
      });
      answered = true;
    } catch (const Error& e) {
      g_answering = 0;
      std::fprintf(stderr, "[%s]\n", e.what());
      continue;
    }
    g_answering = 0;
    std::fputs("\n", stdout);
    std::fflush(stdout);
    if (chat.dropped() > 0)
      std::fprintf(stderr, "[context full: dropped the %d oldest turn%s]\n", chat.dropped(),
                   chat.dropped() == 1 ? "" : "s");
    if (last.finish_reason == "cancelled") std::fputs("[answer stopped]\n", stderr);
    if (last.context_full) std::fputs("[context full: the answer was cut]\n", stderr);
  }
  return 0;
}

}  // namespace rotor
