#include "engine/model.h"

namespace rotor {

const float* Model::keep(std::vector<float>&& tensor) {
  owned.push_back(std::move(tensor));
  return owned.back().data();
}

uint64_t Model::weight_bytes_per_token() const {
  const uint64_t dim = config.dim, block = dim / online.resid_blocks;
  const uint64_t resid_elements = online.resid_blocks * block * block;
  uint64_t bytes = embedding->row_bytes();
  for (const LayerWeights& l : layers) {
    for (const Linear* lin : {l.wq.get(), l.wk.get(), l.wv.get(), l.wo.get(), l.w_gate.get(),
                              l.w_up.get(), l.w_down.get()})
      bytes += lin->weight_bytes();
    for (const ResidualBlocks* resid : {&l.resid_attn, &l.resid_mlp})
      if (*resid) bytes += resid_elements * resid->element_bytes();
  }
  return bytes + classifier->weight_bytes();
}

}  // namespace rotor
