// MappedFile: a read-only memory map of one file (RAII). Checkpoint tensors are views into it,
// so ModelWeights keeps it alive through `storage`.
#pragma once

#include <cstddef>
#include <string>

#include "core/mapped_pages.h"  // ReleaseMappedPages for views into a MappedFile

namespace sq {

class MappedFile {
 public:
  // Maps the whole file; throws Error naming `path` when it cannot be opened or mapped.
  explicit MappedFile(std::string path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const { return data_; }  // nullptr for an empty file
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace sq
