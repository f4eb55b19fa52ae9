#include "formats/mmap.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "core/error.h"
#include "core/input_file.h"
#include "core/mapped_pages.h"

namespace sq {

MappedFile::MappedFile(std::string path) : path_(std::move(path)) {
  uint64_t size = 0;
  const int fd = OpenInputFile(path_, UINT64_MAX, &size);
  size_ = static_cast<size_t>(size);
  if (size_ > 0) {  // mmap refuses a zero length; an empty file maps to nullptr
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    const int err = errno;
    ::close(fd);
    Check(p != MAP_FAILED, "cannot mmap " + path_ + ": " + std::strerror(err));
    data_ = static_cast<const std::byte*>(p);
    RegisterMappedRange(data_, size_);
  } else {
    ::close(fd);
  }
}

MappedFile::~MappedFile() {
  if (!data_) return;
  UnregisterMappedRange(data_);
  ::munmap(const_cast<std::byte*>(data_), size_);
}

}  // namespace sq
