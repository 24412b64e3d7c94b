// Per-thread scratch buffers that only grow. A thread_local std::vector that layers of different
// sizes each resize to their own need zero-fills the grown part at every switch: at TinyLlama
// shape that was a 1 MB memset in every o_proj call of decode.
#pragma once
#include <cstddef>
#include <vector>

namespace rotor {

// v's storage with room for at least n elements; what it holds is left as it was.
template <class T>
T* scratch(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

}  // namespace rotor
