#include "engine/threads.h"

#include <cblas.h>
#include <sched.h>

namespace rotor {

int default_thread_count() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  return 1;
}

void set_thread_count(int n) { openblas_set_num_threads(n); }

}  // namespace rotor
