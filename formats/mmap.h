// MappedFile: a read-only memory map of one file (RAII). Checkpoint tensors are views into it,
// so ModelWeights keeps it alive through `storage`.
#pragma once

#include <cstddef>
#include <string>

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

// Drops this process's resident pages of [p, p + bytes) when the range lies inside a live
// MappedFile (whole pages only); they stay in the page cache and fault back in when read again.
// Anything else (owned, anonymous memory) is left alone.
void ReleaseMappedPages(const void* p, size_t bytes);

}  // namespace sq
