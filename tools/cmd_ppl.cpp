// rotor ppl: perplexity of a model on a text file (shared/docs/EVAL.md protocol).
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/error.h"
#include "engine/perplexity.h"
#include "tools/cli_model.h"
#include "tools/commands.h"
#include "tools/progress.h"

namespace rotor {

int cmd_ppl(int argc, char** argv) {
  Args args("ppl", "-m MODEL -f TEXT [options]",
            "Perplexity: the text is tokenized without BOS and cut into windows of BOS + (ctx-1)\n"
            "tokens (the last partial window is dropped); every chunk token is scored given\n"
            "the tokens before it in its window. ppl = exp(mean NLL).");
  add_model_options(args);
  args.option("file", 'f', "TEXT", "text file to score");
  args.option("ctx", 'c', "N", "window length in tokens, BOS included", "256");
  args.flag("json", 0, "print one JSON object: ppl, nll, tokens, windows, ctx");
  if (!args.parse(argc, argv)) return 0;

  const std::string path = args.get("file");
  if (path.empty()) throw Error("no text given: name a file with -f TEXT");
  const int ctx = static_cast<int>(args.get_int("ctx", 256, 2, 1 << 24));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();

  LoadedModel lm = load_model_from_args(args);
  const std::vector<int> ids = lm.tokenizer->encode(text.str());
  ProgressBar bar("ppl", 0);
  PerplexityResult r = evaluate_perplexity(*lm.model, ids, ctx, [&](int done, int total) {
    if (done == 1) bar = ProgressBar("ppl", total);
    bar.update(done);
  });
  bar.finish();

  if (args.has("json")) {
    nlohmann::json out = {{"ppl", r.ppl}, {"nll", r.nll}, {"tokens", r.tokens},
                          {"windows", r.windows}, {"ctx", r.ctx}};
    std::puts(out.dump().c_str());
  } else {
    std::printf("ppl %.4f  (nll %.5f over %lld tokens, %d windows of %d)\n", r.ppl, r.nll,
                static_cast<long long>(r.tokens), r.windows, r.ctx);
  }
  return 0;
}

}  // namespace rotor
