#include "tools/rotation_options.h"

#include "engine/error.h"
#include "tools/shared_files.h"

namespace rotor {

void add_hadamard_dir_option(Args& args) {
  args.option("hadamard-dir", 0, "DIR", "stored Hadamard factors (hadM.txt) for the rotations",
              "shared/data/hadamard when present");
}

std::string rotation_from_args(const Args& args, const std::string& fallback) {
  const std::string rotation = args.get("rotation", fallback);
  if (rotation != "none" && rotation != "hadamard" && rotation != "psot" && rotation != "psot-layer")
    throw Error("option '--rotation' = " + rotation + " is not one of none, hadamard, psot, psot-layer");
  return rotation;
}

std::string hadamard_dir_from_args(const Args& args) {
  const std::string dir = args.get("hadamard-dir", find_shared_file("/data/hadamard"));
  if (dir.empty())
    throw Error("rotations need the stored Hadamard factors: name their directory with --hadamard-dir DIR");
  return dir;
}

}  // namespace rotor
