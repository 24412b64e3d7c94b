// rotor quantize: a full-precision model in, one compact rotor file out.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "engine/error.h"
#include "quant/quantize_model.h"
#include "tokenizer/chat_template.h"
#include "tools/cli_model.h"
#include "tools/commands.h"
#include "tools/progress.h"
#include "tools/rotation_options.h"
#include "tools/shared_files.h"
#include "tools/version.h"

namespace rotor {

namespace {
// Default from the shared/ data set beside the checkout (tools/shared_files.h): the
// calibration text (TinyStories).
const char* kCalibHelp = "shared/data/tinystories_val_dev.txt when present";

}  // namespace

int cmd_quantize(int argc, char** argv) {
  Args args("quantize", "-m MODEL -o OUT [options]",
            "Quantizes a model (anything `rotor run` accepts) into one compact rotor file that\n"
            "holds the weights, the tokenizer and the recipe.");
  add_model_options(args);
  args.option("output", 'o', "OUT", "compact model file to write");
  args.option("w-bits", 0, "4|8|16|32", "weight bits (16/32 keep float weights, for comparison)", "4");
  args.option("group", 0, "G", "weight columns per scale: 32, 64, 128, or 0 for per channel", "0");
  args.flag("w-sym", 0, "symmetric weights (zero point 0) instead of asymmetric");
  args.option("weights", 0, "rtn|gptq", "rounding: round-to-nearest or GPTQ", "gptq");
  args.option("a-bits", 0, "4|8|16", "activation bits at run time (16 = float)", "8");
  args.option("kv-bits", 0, "4|8|16", "KV cache bits at run time (16 = float)", "8");
  args.option("kv-k-group", 0, "N", "K cache per channel over groups of N positions (KIVI): 0 (per token), 16, 32, 64 or 128", "32");
  args.option("embed-bits", 0, "4|8|16|32", "token embedding bits (4: in the weights' groups, rounded to nearest)", "8");
  args.option("classifier-bits", 0, "4|8|16|32", "lm_head bits (4: in the weights' groups, by GPTQ with --weights gptq); decode reads all of it for every token; a width other than --embed-bits unties it from the embedding", "the embedding's");
  args.option("rotation", 0, "MODE", "none, hadamard (QuaRot-style), psot (learned, one residual rotation) or psot-layer (learned per layer, online residual blocks)", "psot");
  args.flag("bdq", 0, "two-sided diagonal scales (BDQ), the default");
  args.flag("no-bdq", 0, "no BDQ scales");
  args.option("tune-epochs", 0, "N", "end-to-end tuning of the 4/8-bit weights' scales and rounding towards the float model: passes over the calibration windows, each costing about three float forward passes per window (0 = none)", "4");
  args.flag("no-tune-rounding", 0, "tune only the weights' scales; keep GPTQ's (or RTN's) codes");
  add_hadamard_dir_option(args);
  args.option("calib", 0, "FILE", "calibration text (GPTQ, PSOT, BDQ, activation clip factors and weight tuning)", kCalibHelp);
  args.option("calib-windows", 0, "N", "calibration windows", "128");
  args.option("calib-ctx", 0, "N", "tokens per calibration window (with BOS)", "256, or the model's max positions if smaller");
  args.option("seed", 0, "S", "seed of the calibration windows, the Hadamard signs, PSOT's batch order and weight tuning's window order", "0");
  args.option("template", 0, "NAME", "chat template to name in the file: llama2, chatml, zephyr or plain",
              "the source's tokenizer_config.json chat_template when recognized, else none");
  if (!args.parse(argc, argv)) return 0;

  const std::string out_path = args.get("output");
  if (out_path.empty()) throw Error("no output given: name the file to write with -o OUT");
  Recipe r;
  r.w_bits = args.get_choice("w-bits", 4, {4, 8, 16, 32});
  r.group = args.get_choice("group", 0, {0, 32, 64, 128});
  r.w_sym = args.has("w-sym");
  r.weights = args.get("weights", "gptq");
  if (r.weights != "rtn" && r.weights != "gptq")
    throw Error("option '--weights' = " + r.weights + " is not one of rtn, gptq");
  r.a_bits = args.get_choice("a-bits", 8, {4, 8, 16});
  r.kv_bits = args.get_choice("kv-bits", 8, {4, 8, 16});
  r.kv_k_group = args.get_choice("kv-k-group", 32, {0, 16, 32, 64, 128});
  r.embed_bits = args.get_choice("embed-bits", 8, {4, 8, 16, 32});
  r.classifier_bits = args.get_choice("classifier-bits", r.embed_bits, {4, 8, 16, 32});
  r.calib_windows = static_cast<int>(args.get_int("calib-windows", 128, 1, 1 << 20));
  r.rotation = rotation_from_args(args, "psot");
  if (args.has("bdq") && args.has("no-bdq")) throw Error("options '--bdq' and '--no-bdq' contradict each other");
  r.bdq = !args.has("no-bdq");
  r.seed = static_cast<uint64_t>(args.get_int("seed", 0, 0, INT64_MAX));
  r.tune_epochs = static_cast<int>(args.get_int("tune-epochs", 4, 0, 1000));
  r.tune_rounding = r.tune_epochs > 0 && !args.has("no-tune-rounding");
  r.tool_version = kRotorVersion;

  if (args.has("template")) ChatTemplate::kind_by_name(args.get("template"));  // validate early
  LoadedModel lm = load_model_from_args(args);
  std::string chat_template = args.get("template", lm.model->chat_template);
  if (chat_template.empty()) {
    std::string found;
    const ChatTemplate::Kind kind = ChatTemplate::from_hf_directory(lm.model->path, &found);
    if (kind != ChatTemplate::Kind::kPlain) chat_template = ChatTemplate(kind).name();
  }
  const ModelConfig& c = lm.model->config;
  r.calib_ctx = static_cast<int>(
      args.get_int("calib-ctx", std::min(256, c.max_seq_len), 2, c.max_seq_len));

  QuantizeInputs inputs;
  inputs.chat_template = chat_template;
  if (r.rotation != "none") inputs.hadamard_dir = hadamard_dir_from_args(args);
  const std::string calib = args.get("calib", find_shared_file("/data/tinystories_val_dev.txt"));
  if (calib.empty() && recipe_calibrates(r))
    throw Error("this recipe calibrates (GPTQ, PSOT or BDQ): name a text with --calib FILE");
  if (!calib.empty()) {
    std::ifstream in(calib, std::ios::binary);
    if (!in) throw Error(calib + ": cannot open: " + std::strerror(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    inputs.calib_text = ss.str();
    const size_t slash = calib.find_last_of('/');
    r.calib = slash == std::string::npos ? calib : calib.substr(slash + 1);
  } else {
    r.calib_windows = 0;
    r.calib_ctx = 0;
  }

  // Fail before the long work, not after it, when the output cannot be written.
  {
    std::ofstream probe(out_path + ".tmp", std::ios::binary | std::ios::trunc);
    if (!probe) throw Error(out_path + ": cannot create the output file");
  }
  std::remove((out_path + ".tmp").c_str());

  const bool tty = ::isatty(STDERR_FILENO) != 0;
  ProgressBar bar("", 0);
  std::string stage;
  QuantizeReport rep = quantize_model(*lm.model, *lm.tokenizer, r, inputs, out_path,
                                      [&](const QuantizeProgress& p) {
    if (p.stage != stage) {
      bar.finish();
      stage = p.stage;
      bar = ProgressBar(stage, p.total);
    }
    bar.update(p.done);
    if (!p.note.empty()) {  // per-layer logs (PSOT objectives, BDQ choices)
      bar.finish();
      std::fprintf(stderr, "  %s\n", p.note.c_str());
    } else if (tty && p.stage == "quantize") {
      bar.finish();
      std::fprintf(stderr, "  layer %d/%d  %.2f s\n", p.done, p.total, p.seconds);
    }
  });
  bar.finish();
  std::printf("%s: %.2f MB, %.2f bits per weight, w%d%s a%d kv%d embed%d classifier%d %s, rotation %s%s, %.1f s\n",
              out_path.c_str(), rep.file_bytes / 1e6, rep.bits_per_weight, r.w_bits,
              r.group ? ("g" + std::to_string(r.group)).c_str() : "",
              r.a_bits, r.kv_bits, r.embed_bits, r.classifier_bits, r.weights.c_str(), r.rotation.c_str(),
              r.bdq ? " + bdq" : "", rep.seconds);
  return 0;
}

}  // namespace rotor
