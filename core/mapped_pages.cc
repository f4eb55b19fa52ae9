#include "core/mapped_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <map>
#include <mutex>

namespace sq {

namespace {

std::mutex g_mu;
std::map<const std::byte*, size_t>& Ranges() {  // start -> size
  static std::map<const std::byte*, size_t> ranges;
  return ranges;
}

}  // namespace

void RegisterMappedRange(const std::byte* data, size_t size) {
  std::lock_guard<std::mutex> lock(g_mu);
  Ranges()[data] = size;
}

void UnregisterMappedRange(const std::byte* data) {
  std::lock_guard<std::mutex> lock(g_mu);
  Ranges().erase(data);
}

void ReleaseMappedPages(const void* p, size_t bytes) {
  const auto* b = static_cast<const std::byte*>(p);
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = Ranges().upper_bound(b);
    if (it == Ranges().begin()) return;
    --it;
    if (b + bytes > it->first + it->second) return;  // not inside one mapping
  }
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t lo = (reinterpret_cast<uintptr_t>(b) + page - 1) / page * page;
  const uintptr_t hi = (reinterpret_cast<uintptr_t>(b) + bytes) / page * page;
  if (hi > lo) ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
}

}  // namespace sq
