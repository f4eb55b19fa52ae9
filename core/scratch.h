// A reusable, 64-byte aligned buffer (one zmm load or AMX tile row) for the GEMM kernels: each
// thread keeps its `std::vector` (thread_local) and asks for at least n elements a call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sq {

template <class T>
T* AlignedScratch(std::vector<T>& v, size_t n) {
  const size_t slack = 64 / sizeof(T);
  if (v.size() < n + slack) v.resize(n + slack);
  const auto p = reinterpret_cast<uintptr_t>(v.data());
  return reinterpret_cast<T*>((p + 63) & ~uintptr_t{63});
}

}  // namespace sq
