// How many threads the engine's parallel steps use (today: the OpenBLAS products).
#pragma once

namespace rotor {

// The number of cores this process may run on.
int default_thread_count();
void set_thread_count(int n);

}  // namespace rotor
