// rotor: one program, one subcommand per job.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "engine/error.h"
#include "engine/format/rotor_format.h"
#include "tools/commands.h"
#include "tools/version.h"

namespace {

struct Command {
  const char* name;
  int (*run)(int, char**);
  const char* summary;
};

const Command kCommands[] = {
    {"run", rotor::cmd_run, "generate text from a prompt"},
    {"chat", rotor::cmd_chat, "interactive chat, one line per turn"},
    {"serve", rotor::cmd_serve, "OpenAI-compatible HTTP server"},
    {"ppl", rotor::cmd_ppl, "perplexity of a model on a text file"},
    {"info", rotor::cmd_info, "describe a model file"},
    {"quantize", rotor::cmd_quantize, "write a compact quantized model file"},
    {"bench", rotor::cmd_bench, "prefill/decode tokens/s, memory and decode roofline"},
    {"synth", rotor::cmd_synth, "write a random-weight file with a known model's shapes"},
};

void print_help() {
  std::puts(
      "rotor: LLaMA-family language models on CPUs.\n\n"
      "Usage: rotor COMMAND [options]\n\nCommands:");
  for (const Command& c : kCommands) std::printf("  %-8s %s\n", c.name, c.summary);
  std::puts(
      "\nMODEL is a compact rotor file (from 'rotor quantize'), a llama2.c .bin checkpoint\n"
      "(tokenizer.model beside it) or a Hugging Face LLaMA directory (config.json,\n"
      "*.safetensors, tokenizer.model).\n"
      "'rotor COMMAND --help' lists the options of each command; 'rotor --version' prints\n"
      "this build's version and the rotor file format versions it writes and reads.\n\n"
      "Exit codes: 0 success, 1 internal error, 2 bad input (path, file, flag, prompt).");
}

// rotor runs OpenBLAS on the calling thread only (engine/threads.cpp), but OpenBLAS starts its
// own worker threads as it loads, before main, and they spin for a fraction of a second: enough
// to take a core from `rotor bench`'s first runs (stories260K one-thread decode medians ranged
// 33.8k-41.8k tok/s with them, 39.7k-41.4k without). The thread count is read as it loads, so
// asking for one means running the program anew, once.
void load_openblas_single_threaded(char** argv) {
  if (std::getenv("OPENBLAS_NUM_THREADS")) return;
  setenv("OPENBLAS_NUM_THREADS", "1", 1);
  execv("/proc/self/exe", argv);  // returns only if it failed: then go on with the threads
}

}  // namespace

int main(int argc, char** argv) {
  load_openblas_single_threaded(argv);
  if (argc < 2) {
    print_help();
    return rotor::kExitBadInput;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    print_help();
    return 0;
  }
  if (name == "--version") {
    std::printf("rotor %s (writes rotor file format version %u, reads versions %u to %u)\n",
                rotor::kRotorVersion, rotor::format::kVersion, rotor::format::kOldestVersion,
                rotor::format::kVersion);
    return 0;
  }
  try {
    for (const Command& c : kCommands)
      if (name == c.name) return c.run(argc - 2, argv + 2);
    throw rotor::Error("unknown command '" + name + "' (see 'rotor --help')");
  } catch (const rotor::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "rotor: error: %s\n", e.what());
    return e.code();
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "rotor: error: out of memory\n");
    return rotor::kExitInternal;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rotor: internal error: %s\n", e.what());
    return rotor::kExitInternal;
  }
}
