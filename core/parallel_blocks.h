// Large Eigen products split by hand. Eigen's own OpenMP GEMM sizes its cache blocks, and with
// them the order each output sums its terms in, by the thread count: `quantize --threads 1` and
// `--threads 2` wrote different GPTQ codes at hidden 512. The build turns that parallelism off
// (EIGEN_DONT_PARALLELIZE, CMakeLists.txt); a product worth the threads runs instead as fixed
// blocks of its output, each one single-threaded Eigen product of a size that does not depend on
// the thread count, shared out over the OpenMP threads: the same sums whatever --threads says.
#pragma once

#include <Eigen/Core>
#include <algorithm>

namespace sq {

// Output rows or columns per block: wide enough for Eigen's kernels to run at speed, narrow
// enough that a 2048-wide output gives every thread several blocks.
inline constexpr Eigen::Index kProductBlock = 128;

// f(start, count) for the consecutive blocks [start, start + count) of [0, n), across threads.
// f must not throw (an exception cannot leave an OpenMP loop).
template <typename F>
void ForEachBlock(Eigen::Index n, F&& f, Eigen::Index block = kProductBlock) {
  const Eigen::Index blocks = (n + block - 1) / block;
#pragma omp parallel for schedule(dynamic, 1) if (blocks > 1)
  for (Eigen::Index b = 0; b < blocks; ++b) f(b * block, std::min(block, n - b * block));
}

}  // namespace sq
