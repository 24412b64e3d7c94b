// rotor synth: a compact file with random weights and a real model's shapes, for measuring
// speed (rotor bench, bench/speed.sh) without the real checkpoint.
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "engine/error.h"
#include "quant/model_shapes.h"
#include "quant/synth_model.h"
#include "tokenizer/tokenizer.h"
#include "tools/args.h"
#include "tools/commands.h"
#include "tools/progress.h"
#include "tools/rotation_options.h"
#include "tools/shared_files.h"
#include "tools/version.h"

namespace rotor {

namespace {

const char* kTokenizerRel = "/models/llama2-tokenizer/tokenizer.model";

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The named shape with the flags' overrides, or the flags alone (then all of them).
ModelConfig shape_from_args(const Args& args) {
  struct Dim {
    const char* flag;
    int ModelConfig::*field;
  };
  const Dim dims[] = {{"dim", &ModelConfig::dim},          {"layers", &ModelConfig::n_layers},
                      {"heads", &ModelConfig::n_heads},    {"kv-heads", &ModelConfig::n_kv_heads},
                      {"hidden", &ModelConfig::hidden_dim}, {"vocab", &ModelConfig::vocab_size},
                      {"ctx", &ModelConfig::max_seq_len}};
  ModelConfig c;
  if (args.has("shape")) {
    c = model_shape(args.get("shape"));
  } else {
    c.tied_embeddings = false;
    for (const Dim& d : dims)
      if (!args.has(d.flag))
        throw Error(std::string("no shape given: name one with --shape NAME, or give --") +
                    d.flag + " and the other dimensions");
  }
  for (const Dim& d : dims)
    c.*d.field = static_cast<int>(args.get_int(d.flag, c.*d.field, 1, INT32_MAX));
  return c;  // validated by write_synth_model
}

}  // namespace

int cmd_synth(int argc, char** argv) {
  std::string shapes;
  for (const NamedShape& s : model_shapes()) shapes += (shapes.empty() ? "" : ", ") + std::string(s.name);
  Args args("synth", "(--shape NAME | --dim D --layers L ...) -o OUT [options]",
            "Writes a compact rotor file with random weights and the shapes of a known model\n"
            "(" + shapes + ") or of the dimensions given, for\n"
            "measuring speed with `rotor bench`: its text output is meaningless. The packed\n"
            "weights are drawn directly and streamed to the file, so any size fits in memory;\n"
            "the same flags and seed give the same file. Embedding and classifier (untied) are\n"
            "8-bit (the classifier 4-bit with --classifier-bits 4), norms are 1.");
  args.option("shape", 0, "NAME", "model shape: " + shapes);
  args.option("output", 'o', "OUT", "compact model file to write");
  args.option("dim", 0, "D", "residual width", "the shape's");
  args.option("layers", 0, "L", "transformer layers", "the shape's");
  args.option("heads", 0, "H", "query heads", "the shape's");
  args.option("kv-heads", 0, "G", "key/value heads", "the shape's");
  args.option("hidden", 0, "I", "MLP width", "the shape's");
  args.option("vocab", 0, "V", "vocabulary size", "the shape's");
  args.option("ctx", 0, "N", "positions", "the shape's");
  args.option("w-bits", 0, "4|8", "weight bits", "4");
  args.option("group", 0, "G", "weight columns per scale: 32, 64, 128, or 0 for per channel", "0");
  args.option("classifier-bits", 0, "4|8", "classifier (lm_head) bits (4: in the weights' groups)", "8");
  args.option("a-bits", 0, "4|8|16", "activation bits at run time (16 = float)", "8");
  args.option("kv-bits", 0, "4|8|16", "KV cache bits at run time (16 = float)", "8");
  args.option("kv-k-group", 0, "N", "K cache per channel over groups of N positions (KIVI): 0 (per token), 16, 32, 64 or 128", "32");
  args.option("rotation", 0, "MODE",
              "online steps of a rotation recipe, with random contents: none; hadamard or psot "
              "(R4 before down_proj, and R3 on Q/K with --kv-k-group 0); psot-layer (also the "
              "residual blocks)", "none");
  args.flag("bdq", 0, "with a rotation: BDQ's down_proj scale, fused into R4");
  add_hadamard_dir_option(args);
  args.option("seed", 0, "S", "seed of the random weights", "0");
  args.option("tokenizer", 0, "FILE",
              "SentencePiece model to embed; it may not have more pieces than the vocabulary",
              "shared/models/llama2-tokenizer/tokenizer.model (32000 pieces)");
  if (!args.parse(argc, argv)) return 0;

  const std::string out_path = args.get("output");
  if (out_path.empty()) throw Error("no output given: name the file to write with -o OUT");
  const ModelConfig c = shape_from_args(args);
  Recipe r;
  r.w_bits = args.get_choice("w-bits", 4, {4, 8});
  r.group = args.get_choice("group", 0, {0, 32, 64, 128});
  r.weights = "random";
  r.a_bits = args.get_choice("a-bits", 8, {4, 8, 16});
  r.kv_bits = args.get_choice("kv-bits", 8, {4, 8, 16});
  r.embed_bits = 8;
  r.classifier_bits = args.get_choice("classifier-bits", 8, {4, 8});
  r.kv_k_group = args.get_choice("kv-k-group", 32, {0, 16, 32, 64, 128});
  r.rotation = rotation_from_args(args, "none");
  r.bdq = args.has("bdq");
  if (r.bdq && r.rotation == "none")
    throw Error("option '--bdq' needs a rotation: without one BDQ's scales fold into the weights and cost nothing online");
  r.seed = static_cast<uint64_t>(args.get_int("seed", 0, 0, INT64_MAX));
  r.tool_version = kRotorVersion;
  const std::string hadamard_dir = r.rotation == "none" ? "" : hadamard_dir_from_args(args);

  std::string tok_path = args.get("tokenizer");
  if (tok_path.empty()) tok_path = find_shared_file(kTokenizerRel);
  if (tok_path.empty())
    throw Error(std::string("no tokenizer: shared") + kTokenizerRel +
                " was not found; name one with --tokenizer FILE");
  const std::string tok_bytes = read_bytes(tok_path);
  const int pieces = Tokenizer(tok_bytes, tok_path).vocab_size();
  if (pieces > c.vocab_size)
    throw Error(tok_path + ": tokenizer has " + std::to_string(pieces) +
                " pieces but the vocabulary is " + std::to_string(c.vocab_size) +
                "; name a smaller one with --tokenizer FILE");

  const auto start = std::chrono::steady_clock::now();
  ProgressBar bar("synth", 0);
  const uint64_t bytes = write_synth_model(c, r, tok_bytes, hadamard_dir, out_path, [&](int done, int total) {
    if (done == 1) bar = ProgressBar("synth", total);
    bar.update(done);
  });
  bar.finish();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string online = r.rotation == "none" ? "" : ", online " + r.rotation + (r.bdq ? "+bdq" : "");
  std::printf("%s: %.2f MB, %.2f bits per weight, random w%d%s a%d kv%d%s, %.1f s\n",
              out_path.c_str(), bytes / 1e6, 8.0 * bytes / c.parameter_count(), r.w_bits,
              r.group ? ("g" + std::to_string(r.group)).c_str() : "", r.a_bits, r.kv_bits,
              online.c_str(), seconds);
  return 0;
}

}  // namespace rotor
