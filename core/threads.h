// Thread-count control. sinkquant parallelises with OpenMP; results never depend on the
// thread count (reductions are done in a fixed order).
#pragma once

namespace sq {

int NumThreads();
// n <= 0 keeps OpenMP's default (OMP_NUM_THREADS or the core count).
void SetNumThreads(int n);

}  // namespace sq
