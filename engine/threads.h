// How many threads the engine's parallel steps use: the linear layers and attention run on one
// shared ThreadPool; OpenBLAS runs single-threaded inside its tasks.
#pragma once
#include "engine/thread_pool.h"

namespace rotor {

// The physical cores this process may run on (SMT siblings count once).
int default_thread_count();
// Sizes the shared pool (n ≥ 1) and makes OpenBLAS single-threaded. Not while a forward
// pass runs.
void set_thread_count(int n);
// The shared pool; default_thread_count() workers until set_thread_count() says otherwise.
ThreadPool& thread_pool();

}  // namespace rotor
