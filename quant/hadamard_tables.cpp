#include "quant/hadamard_tables.h"

#include <fstream>

#include "engine/error.h"
#include "engine/hadamard.h"

namespace rotor {

std::vector<int8_t> load_hadamard_matrix(const std::string& dir, int m) {
  if (m < 1) throw Error("Hadamard matrix order " + std::to_string(m) + " is not positive");
  if (m == 1) return {};
  const std::string path = dir + "/had" + std::to_string(m) + ".txt";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open Hadamard matrix file " + path);
  std::vector<int8_t> h;
  h.reserve(static_cast<size_t>(m) * m);
  std::string line;
  int rows = 0, line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    if (rows == m)
      throw Error(path + ": more than " + std::to_string(m) + " matrix rows (line " +
                  std::to_string(line_no) + ")");
    if (line.size() != static_cast<size_t>(m))
      throw Error(path + ": line " + std::to_string(line_no) + " has " +
                  std::to_string(line.size()) + " characters, expected " + std::to_string(m));
    for (size_t c = 0; c < line.size(); ++c) {
      if (line[c] == '+') {
        h.push_back(1);
      } else if (line[c] == '-') {
        h.push_back(-1);
      } else {
        throw Error(path + ": line " + std::to_string(line_no) + " column " +
                    std::to_string(c + 1) + ": expected '+' or '-'");
      }
    }
    ++rows;
  }
  if (in.bad()) throw Error("error reading Hadamard matrix file " + path);
  if (rows != m)
    throw Error(path + ": " + std::to_string(rows) + " matrix rows, expected " + std::to_string(m));
  try {
    HadamardTransform::validate_matrix(h, m);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  return h;
}

}  // namespace rotor
