#include "engine/model.h"

namespace rotor {

const float* Model::keep(std::vector<float>&& tensor) {
  owned.push_back(std::move(tensor));
  return owned.back().data();
}

uint64_t Model::weight_bytes_per_token() const {
  uint64_t bytes = embedding->row_bytes();
  for (const LayerWeights& l : layers)
    for (const Linear* lin : {l.wq.get(), l.wk.get(), l.wv.get(), l.wo.get(), l.w_gate.get(),
                              l.w_up.get(), l.w_down.get()})
      bytes += lin->weight_bytes();
  return bytes + classifier->weight_bytes();
}

}  // namespace rotor
