// Several processes (MPI ranks) sharing one job: the only place that talks to MPI, so a build
// without MPI differs in core/dist.cc alone. Every process runs the whole command; work over
// token windows is split in contiguous blocks (BlockOf) and the partial statistics are combined
// here. Reductions are deterministic: values are gathered on rank 0, combined in rank order and
// sent back, so every rank holds the same bits and a rerun gives the same result.
// Without MPI, or when the program was not started by mpirun, there is one rank and every
// function is the identity.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace sq::dist {

// Starts MPI when the process was launched by mpirun (a plain run never touches MPI) and stops
// it at scope exit.
class Session {
 public:
  Session(int* argc, char*** argv);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
};

int Rank();  // 0 .. Size()-1
int Size();

// This rank's block of `n` items in order: ranks get contiguous, nearly equal blocks, rank 0 the
// first one (so together they cover 0..n-1 exactly once, in file order).
struct Block {
  size_t begin = 0, end = 0;
};
Block BlockOf(size_t n);

// Elementwise over every rank's `v` (same length everywhere), result on every rank.
void SumInRankOrder(std::span<double> v);
void SumInRankOrder(std::span<int64_t> v);
void Max(std::span<float> v);
void Max(std::span<double> v);

// A sum that must come out bit for bit as one process adds it, in file order: `state` goes from
// rank to rank (rank r receives rank r-1's), each rank calls `add_mine` on it, and the last
// rank's result is sent to all. The adding runs one rank after the other.
void FoldInRankOrder(std::span<double> state, const std::function<void()>& add_mine);

// Every rank's `mine` (lengths may differ), concatenated in rank order, on every rank.
std::vector<double> Gather(std::span<const double> mine);

// Prints "message" on stderr once for the whole job and ends every rank with exit code 1.
[[noreturn]] void Abort(const std::string& message);

}  // namespace sq::dist
