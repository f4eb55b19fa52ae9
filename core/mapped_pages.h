// Which address ranges are read-only file mappings (formats/mmap registers each MappedFile), so
// code that walks tensors can drop their resident pages after reading them: an 8B checkpoint
// read once, layer by layer, then never holds more than a layer's pages.
#pragma once

#include <cstddef>

namespace sq {

void RegisterMappedRange(const std::byte* data, size_t size);
void UnregisterMappedRange(const std::byte* data);

// Drops this process's resident pages of [p, p + bytes) when the range lies inside a
// registered mapping (whole pages only); they stay in the page cache and fault back in when
// read again. Anything else (owned, anonymous memory, where MADV_DONTNEED would zero the data)
// is left alone.
void ReleaseMappedPages(const void* p, size_t bytes);

}  // namespace sq
