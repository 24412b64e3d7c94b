// rotor quantize: a full-precision model in, one compact rotor file out.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "engine/error.h"
#include "quant/quantize_model.h"
#include "tokenizer/chat_template.h"
#include "tools/cli_model.h"
#include "tools/commands.h"
#include "tools/progress.h"
#include "tools/version.h"

namespace rotor {

namespace {
// The default calibration text: TinyStories from the shared/ data set beside the checkout,
// looked up in $ROTOR_SHARED, beside the repository holding this binary, then ../shared.
const char* kCalibHelp = "shared/data/tinystories_val_dev.txt when present";

std::string default_calibration() {
  const std::string rel = "/data/tinystories_val_dev.txt";
  std::vector<std::string> roots;
  if (const char* env = std::getenv("ROTOR_SHARED")) roots.push_back(env);
  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    std::string dir(exe, static_cast<size_t>(n));
    dir = dir.substr(0, dir.find_last_of('/'));      // build/
    dir = dir.substr(0, dir.find_last_of('/'));      // the checkout
    roots.push_back(dir + "/../shared");
  }
  roots.push_back("../shared");
  for (const std::string& root : roots) {
    struct stat st;
    if (::stat((root + rel).c_str(), &st) == 0) return root + rel;
  }
  return "";
}

int pick(const Args& args, const char* name, int fallback, std::initializer_list<int> allowed) {
  const int v = static_cast<int>(args.get_int(name, fallback, INT32_MIN, INT32_MAX));
  for (int a : allowed)
    if (v == a) return v;
  std::string list;
  for (int a : allowed) list += (list.empty() ? "" : ", ") + std::to_string(a);
  throw Error("option '--" + std::string(name) + "' = " + std::to_string(v) + " is not one of " + list);
}
}  // namespace

int cmd_quantize(int argc, char** argv) {
  Args args("quantize", "-m MODEL -o OUT [options]",
            "Quantizes a model (anything `rotor run` accepts) into one compact rotor file that\n"
            "holds the weights, the tokenizer and the recipe.");
  add_model_options(args);
  args.option("output", 'o', "OUT", "compact model file to write");
  args.option("w-bits", 0, "4|8", "weight bits", "4");
  args.option("group", 0, "G", "weight columns per scale: 32, 64, 128, or 0 for per channel", "0");
  args.flag("w-sym", 0, "symmetric weights (zero point 0) instead of asymmetric");
  args.option("weights", 0, "rtn|gptq", "rounding: round-to-nearest or GPTQ", "gptq");
  args.option("a-bits", 0, "4|8|16", "activation bits at run time (16 = float)", "8");
  args.option("kv-bits", 0, "4|8|16", "KV cache bits at run time (16 = float)", "8");
  args.option("embed-bits", 0, "8|16|32", "embedding and lm_head bits", "8");
  args.option("calib", 0, "FILE", "calibration text for GPTQ", kCalibHelp);
  args.option("calib-windows", 0, "N", "calibration windows", "64");
  args.option("calib-ctx", 0, "N", "tokens per calibration window (with BOS)", "256, or the model's max positions if smaller");
  args.option("seed", 0, "S", "seed for picking calibration windows", "0");
  args.option("template", 0, "NAME", "chat template to name in the file: llama2, chatml, zephyr or plain",
              "the source's tokenizer_config.json chat_template when recognized, else none");
  if (!args.parse(argc, argv)) return 0;

  const std::string out_path = args.get("output");
  if (out_path.empty()) throw Error("no output given: name the file to write with -o OUT");
  Recipe r;
  r.w_bits = pick(args, "w-bits", 4, {4, 8});
  r.group = pick(args, "group", 0, {0, 32, 64, 128});
  r.w_sym = args.has("w-sym");
  r.weights = args.get("weights", "gptq");
  if (r.weights != "rtn" && r.weights != "gptq")
    throw Error("option '--weights' = " + r.weights + " is not one of rtn, gptq");
  r.a_bits = pick(args, "a-bits", 8, {4, 8, 16});
  r.kv_bits = pick(args, "kv-bits", 8, {4, 8, 16});
  r.embed_bits = pick(args, "embed-bits", 8, {8, 16, 32});
  r.calib_windows = static_cast<int>(args.get_int("calib-windows", 64, 1, 1 << 20));
  r.seed = static_cast<uint64_t>(args.get_int("seed", 0, 0, INT64_MAX));
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

  std::string calib_text;
  if (r.weights == "gptq") {
    std::string calib = args.get("calib");
    if (calib.empty()) calib = default_calibration();
    if (calib.empty()) throw Error("GPTQ needs calibration text: name a file with --calib FILE");
    std::ifstream in(calib, std::ios::binary);
    if (!in) throw Error(calib + ": cannot open: " + std::strerror(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    calib_text = ss.str();
    const size_t slash = calib.find_last_of('/');
    r.calib = slash == std::string::npos ? calib : calib.substr(slash + 1);
  } else {
    r.calib_windows = 0;
    r.calib_ctx = 0;
  }

  const bool tty = ::isatty(STDERR_FILENO) != 0;
  ProgressBar bar("", 0);
  std::string stage;
  QuantizeReport rep = quantize_model(*lm.model, *lm.tokenizer, r, calib_text, chat_template,
                                      out_path,
                                      [&](const QuantizeProgress& p) {
    if (p.stage != stage) {
      bar.finish();
      stage = p.stage;
      bar = ProgressBar(stage, p.total);
    }
    bar.update(p.done);
    if (tty && p.stage == "quantize") {
      bar.finish();
      std::fprintf(stderr, "  layer %d/%d  %.2f s\n", p.done, p.total, p.seconds);
    }
  });
  bar.finish();
  std::printf("%s: %.2f MB, %.2f bits per weight, w%d%s a%d kv%d embed%d %s, %.1f s\n",
              out_path.c_str(), rep.file_bytes / 1e6, rep.bits_per_weight, r.w_bits,
              r.group ? ("g" + std::to_string(r.group)).c_str() : "",
              r.a_bits, r.kv_bits, r.embed_bits, r.weights.c_str(), rep.seconds);
  return 0;
}

}  // namespace rotor
