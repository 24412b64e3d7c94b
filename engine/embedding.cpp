#include "engine/embedding.h"

#include <algorithm>

namespace rotor {

void EmbeddingF32::lookup(int token, float* out) const {
  std::copy_n(table_ + static_cast<size_t>(token) * dim_, dim_, out);
}

}  // namespace rotor
