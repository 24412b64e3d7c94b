// How many threads the engine's parallel steps use: the linear layers and attention run on one
// shared ThreadPool; OpenBLAS runs single-threaded inside its tasks.
#pragma once
#include <cstdint>

#include "engine/thread_pool.h"

namespace rotor {

// The physical cores this process may run on (SMT siblings count once).
int default_thread_count();
// Sizes the shared pool (n ≥ 1) and makes OpenBLAS single-threaded. Not while a forward
// pass runs.
void set_thread_count(int n);
// The shared pool; default_thread_count() workers until set_thread_count() says otherwise.
ThreadPool& thread_pool();
// The workers a step of `work` multiply-adds should use: below kMinParallelWork it stays on the
// calling thread, as waking the pool and moving its data between cores would cost more than
// the split saves (stories260K's layers and attention at decode); from there on the whole pool.
constexpr int64_t kMinParallelWork = int64_t{1} << 18;
inline int workers_for(int64_t work) {
  return work < kMinParallelWork ? 1 : thread_pool().size();
}

}  // namespace rotor
