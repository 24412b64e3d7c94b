#include "tools/template_options.h"

namespace rotor {

void add_template_options(Args& args) {
  args.option("template", 0, "NAME", "chat template: llama2, chatml, zephyr or plain",
              "the model's (named in a compact file, or tokenizer_config.json's chat_template), else plain");
  args.option("system", 0, "TEXT", "system prompt", "none");
}

void check_template_option(const Args& args) {
  if (args.has("template")) ChatTemplate::kind_by_name(args.get("template"));
}

ChatTemplate template_from_args(const Args& args, const Model& model, std::string* why) {
  const std::string system = args.get("system");
  if (args.has("template")) {
    *why = "--template";
    return ChatTemplate(ChatTemplate::kind_by_name(args.get("template")), system);
  }
  if (!model.chat_template.empty()) {
    *why = "named in the model file";
    return ChatTemplate(ChatTemplate::kind_by_name(model.chat_template), system);
  }
  return ChatTemplate(ChatTemplate::from_hf_directory(model.path, why), system);
}

}  // namespace rotor
