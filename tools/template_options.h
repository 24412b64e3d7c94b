// The chat-template flags shared by `rotor chat` and `rotor serve` (--template, --system) and
// the choice they make: the flag, else the template a compact file names, else a Hugging Face
// directory's chat_template, else plain.
#pragma once
#include <string>

#include "engine/model.h"
#include "tokenizer/chat_template.h"
#include "tools/args.h"

namespace rotor {

void add_template_options(Args& args);
// Checks --template's value before the model loads (an Error names it).
void check_template_option(const Args& args);
// `why` says where the choice came from.
ChatTemplate template_from_args(const Args& args, const Model& model, std::string* why);

}  // namespace rotor
