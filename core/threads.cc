#include "core/threads.h"

#include <omp.h>

namespace sq {

int NumThreads() { return omp_get_max_threads(); }

void SetNumThreads(int n) {
  if (n > 0) omp_set_num_threads(n);
}

}  // namespace sq
