#include "formats/mmap.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>

#include "core/error.h"

namespace sq {

namespace {

// Live mappings (start -> size), so ReleaseMappedPages never touches anonymous memory (where
// MADV_DONTNEED would zero the data instead of dropping a re-readable copy).
std::mutex g_maps_mu;
std::map<const std::byte*, size_t>& LiveMaps() {
  static std::map<const std::byte*, size_t> maps;
  return maps;
}

}  // namespace

void ReleaseMappedPages(const void* p, size_t bytes) {
  const auto* b = static_cast<const std::byte*>(p);
  {
    std::lock_guard<std::mutex> lock(g_maps_mu);
    auto it = LiveMaps().upper_bound(b);
    if (it == LiveMaps().begin()) return;
    --it;
    if (b + bytes > it->first + it->second) return;  // not inside one mapping
  }
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t lo = (reinterpret_cast<uintptr_t>(b) + page - 1) / page * page;
  const uintptr_t hi = (reinterpret_cast<uintptr_t>(b) + bytes) / page * page;
  if (hi > lo) ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
}

MappedFile::MappedFile(std::string path) : path_(std::move(path)) {
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  Check(fd >= 0, "cannot open " + path_ + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error("cannot map " + path_ + ": not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {  // mmap refuses a zero length; an empty file maps to nullptr
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    const int err = errno;
    ::close(fd);
    Check(p != MAP_FAILED, "cannot mmap " + path_ + ": " + std::strerror(err));
    data_ = static_cast<const std::byte*>(p);
    std::lock_guard<std::mutex> lock(g_maps_mu);
    LiveMaps()[data_] = size_;
  } else {
    ::close(fd);
  }
}

MappedFile::~MappedFile() {
  if (!data_) return;
  {
    std::lock_guard<std::mutex> lock(g_maps_mu);
    LiveMaps().erase(data_);
  }
  ::munmap(const_cast<std::byte*>(data_), size_);
}

}  // namespace sq
