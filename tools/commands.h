// The subcommands of the `rotor` program. Each takes the arguments after its name and
// returns the exit code; user errors are thrown as rotor::Error.
#pragma once

namespace rotor {

int cmd_run(int argc, char** argv);
int cmd_chat(int argc, char** argv);
int cmd_ppl(int argc, char** argv);
int cmd_info(int argc, char** argv);
int cmd_quantize(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_synth(int argc, char** argv);
int cmd_serve(int argc, char** argv);

}  // namespace rotor
