#include "core/dist.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#ifdef SINKQUANT_MPI
#include <mpi.h>
#endif

namespace sq::dist {

Block BlockOf(size_t n) {
  const size_t size = static_cast<size_t>(Size()), rank = static_cast<size_t>(Rank());
  const size_t base = n / size, extra = n % size;  // the first `extra` ranks take one more
  Block b;
  b.begin = rank * base + std::min(rank, extra);
  b.end = b.begin + base + (rank < extra ? 1 : 0);
  return b;
}

#ifndef SINKQUANT_MPI

Session::Session(int*, char***) {}
Session::~Session() = default;
int Rank() { return 0; }
int Size() { return 1; }
void SumInRankOrder(std::span<double>) {}
void SumInRankOrder(std::span<int64_t>) {}
void Max(std::span<float>) {}
void Max(std::span<double>) {}
std::vector<double> Gather(std::span<const double> mine) { return {mine.begin(), mine.end()}; }
void FoldInRankOrder(std::span<double>, const std::function<void()>& add_mine) { add_mine(); }

void Abort(const std::string& message) {
  std::fprintf(stderr, "%s\n", message.c_str());
  std::exit(1);
}

#else

namespace {

// mpirun (Open MPI), PMIx and PMI launchers (Slurm, MPICH's hydra) set one of these; a plain
// run stays a plain process: no MPI start-up time and no launcher messages.
bool LaunchedByMpirun() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"}) {
    if (std::getenv(v)) return true;
  }
  return false;
}

bool Running() {
  int init = 0, done = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&done);
  return init && !done;
}

template <typename T>
MPI_Datatype TypeOf();
template <>
MPI_Datatype TypeOf<double>() { return MPI_DOUBLE; }
template <>
MPI_Datatype TypeOf<float>() { return MPI_FLOAT; }
template <>
MPI_Datatype TypeOf<int64_t>() { return MPI_INT64_T; }

// Chunks bound rank 0's gather buffer (Size() x chunk) whatever the length (a 14336^2 Hessian).
constexpr size_t kChunk = size_t(1) << 20;

// MPI_Allreduce's SUM may add in any order (a tree that depends on the rank count), so sums go
// through rank 0, which adds the ranks' values in rank order, and come back by broadcast.
template <typename T>
void SumOrdered(std::span<T> v) {
  const int size = Size();
  if (size == 1) return;
  std::vector<T> all;
  for (size_t at = 0; at < v.size(); at += kChunk) {
    const int n = static_cast<int>(std::min(kChunk, v.size() - at));
    if (Rank() == 0) all.resize(static_cast<size_t>(n) * size);
    MPI_Gather(v.data() + at, n, TypeOf<T>(), all.data(), n, TypeOf<T>(), 0, MPI_COMM_WORLD);
    if (Rank() == 0) {
      for (int i = 0; i < n; ++i) {
        T s = all[i];
        for (int r = 1; r < size; ++r) s += all[static_cast<size_t>(r) * n + i];
        v[at + i] = s;
      }
    }
    MPI_Bcast(v.data() + at, n, TypeOf<T>(), 0, MPI_COMM_WORLD);
  }
}

// A maximum does not depend on the order: MPI's own reduction is exact here.
template <typename T>
void MaxAll(std::span<T> v) {
  if (Size() == 1 || v.empty()) return;
  MPI_Allreduce(MPI_IN_PLACE, v.data(), static_cast<int>(v.size()), TypeOf<T>(), MPI_MAX,
                MPI_COMM_WORLD);
}

}  // namespace

Session::Session(int* argc, char*** argv) {
  if (LaunchedByMpirun()) MPI_Init(argc, argv);
}

Session::~Session() {
  if (Running()) MPI_Finalize();
}

int Rank() {
  if (!Running()) return 0;
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

int Size() {
  if (!Running()) return 1;
  int s = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

void SumInRankOrder(std::span<double> v) { SumOrdered(v); }
void SumInRankOrder(std::span<int64_t> v) { SumOrdered(v); }
void Max(std::span<float> v) { MaxAll(v); }
void Max(std::span<double> v) { MaxAll(v); }

void FoldInRankOrder(std::span<double> state, const std::function<void()>& add_mine) {
  const int rank = Rank(), size = Size();
  for (size_t at = 0; rank > 0 && at < state.size(); at += kChunk) {
    const int n = static_cast<int>(std::min(kChunk, state.size() - at));
    MPI_Recv(state.data() + at, n, MPI_DOUBLE, rank - 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  }
  add_mine();
  for (size_t at = 0; rank + 1 < size && at < state.size(); at += kChunk) {
    const int n = static_cast<int>(std::min(kChunk, state.size() - at));
    MPI_Send(state.data() + at, n, MPI_DOUBLE, rank + 1, 0, MPI_COMM_WORLD);
  }
  for (size_t at = 0; size > 1 && at < state.size(); at += kChunk) {
    const int n = static_cast<int>(std::min(kChunk, state.size() - at));
    MPI_Bcast(state.data() + at, n, MPI_DOUBLE, size - 1, MPI_COMM_WORLD);
  }
}

std::vector<double> Gather(std::span<const double> mine) {
  const int size = Size();
  if (size == 1) return {mine.begin(), mine.end()};
  int n = static_cast<int>(mine.size());
  std::vector<int> counts(size), offsets(size, 0);
  MPI_Allgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD);
  for (int r = 1; r < size; ++r) offsets[r] = offsets[r - 1] + counts[r - 1];
  std::vector<double> all(static_cast<size_t>(offsets.back() + counts.back()));
  MPI_Allgatherv(mine.data(), n, MPI_DOUBLE, all.data(), counts.data(), offsets.data(),
                 MPI_DOUBLE, MPI_COMM_WORLD);
  return all;
}

void Abort(const std::string& message) {
  if (Size() == 1) {
    std::fprintf(stderr, "%s\n", message.c_str());
    std::exit(1);
  }
  // Most errors (a bad flag, a missing file) happen on every rank at once. Rank 0 speaks first
  // and its abort ends the others while they wait, so the message appears once; an error on
  // another rank alone is printed by that rank after the pause.
  if (Rank() != 0) std::this_thread::sleep_for(std::chrono::seconds(2));
  std::fprintf(stderr, "%s\n", message.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::exit(1);  // MPI_Abort does not return; this satisfies [[noreturn]]
}

#endif

}  // namespace sq::dist
