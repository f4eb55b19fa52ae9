// Thread-count control. sinkquant parallelises with OpenMP; results never depend on the
// thread count (reductions are done in a fixed order, large Eigen products in fixed blocks:
// core/parallel_blocks.h). tests/hardening/threads_test.cc checks it byte for byte.
#pragma once

namespace sq {

int NumThreads();
// n <= 0 keeps OpenMP's default (OMP_NUM_THREADS or the core count).
void SetNumThreads(int n);

}  // namespace sq
