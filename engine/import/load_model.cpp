#include "engine/import/load_model.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "engine/error.h"
#include "engine/format/rotor_format.h"

namespace rotor {

namespace {

std::string directory_of(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return path;
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open tokenizer: " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// "ROTOR" starts every compact file; the rest of the magic is checked by the importer, so a
// damaged magic is reported as such rather than as a strange llama2.c header.
bool has_rotor_magic(const std::string& path) {
  char magic[5] = {};
  std::ifstream in(path, std::ios::binary);
  in.read(magic, sizeof magic);
  return in.gcount() == sizeof magic && std::memcmp(magic, format::kMagic, sizeof magic) == 0;
}

}  // namespace

std::unique_ptr<Model> load_model(const std::string& path, const LoadOptions& options) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    throw Error(path + ": no such model file or directory");
  std::unique_ptr<Model> model = S_ISDIR(st.st_mode)      ? import_hf(path)
                                 : has_rotor_magic(path) ? import_rotor(path, options.access)
                                                         : import_llama2c(path, options.access);

  if (model->tokenizer_proto.empty()) {
    std::string tok = options.tokenizer_path.empty()
                          ? directory_of(path) + "/tokenizer.model"
                          : options.tokenizer_path;
    struct stat ts;
    bool present = ::stat(tok.c_str(), &ts) == 0;
    if (present || !options.tokenizer_path.empty()) {
      model->tokenizer_proto = read_whole_file(tok);
      model->tokenizer_path = tok;
    } else if (options.require_tokenizer) {
      throw Error(tok + ": tokenizer not found beside the model (name one with --tokenizer)");
    }
  }
  return model;
}

}  // namespace rotor
