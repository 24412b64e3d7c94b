#include "tools/cli_model.h"

#include "engine/error.h"
#include "engine/import/load_model.h"
#include "engine/threads.h"

namespace rotor {

void add_model_options(Args& args) {
  args.option("model", 'm', "MODEL",
              "compact rotor file, llama2.c .bin checkpoint or Hugging Face directory");
  args.option("tokenizer", 0, "FILE", "SentencePiece model", "tokenizer.model beside MODEL");
  args.option("threads", 't', "N", "threads for the forward pass",
              std::to_string(default_thread_count()) + ", the physical cores available");
  args.flag("no-mmap", 0,
            "read the model file into private memory (2 MB pages) instead of mapping it: a "
            "slower start; on a VM 7B decode ran 0-39% faster so (docs/BENCHMARKS.md)");
}

LoadedModel load_model_from_args(const Args& args, const std::string& path) {
  const std::string model_path = path.empty() ? args.get("model") : path;
  if (model_path.empty()) throw Error("no model given: name one with -m MODEL");
  set_thread_count(static_cast<int>(args.get_int("threads", default_thread_count(), 1, 1024)));

  LoadOptions options;
  options.tokenizer_path = args.get("tokenizer");
  if (args.has("no-mmap")) options.access = FileAccess::kRead;
  LoadedModel lm;
  lm.model = load_model(model_path, options);
  const std::string origin = lm.model->tokenizer_path;
  lm.tokenizer = std::make_unique<Tokenizer>(lm.model->tokenizer_proto, origin);
  ModelConfig& c = lm.model->config;
  if (lm.tokenizer->vocab_size() > c.vocab_size)
    throw Error(origin + ": tokenizer has " + std::to_string(lm.tokenizer->vocab_size()) +
                " pieces but the model's vocabulary is " + std::to_string(c.vocab_size));
  // llama2.c checkpoints carry no special-token ids; the tokenizer defines them.
  if (lm.model->format == "llama2.c") {
    c.bos_id = lm.tokenizer->bos_id();
    c.eos_id = lm.tokenizer->eos_id();
  }
  return lm;
}

}  // namespace rotor
