// safetensors: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the
// tensor bytes (offsets are relative to the end of the header). Files are memory-mapped and
// tensors are views into the map, in their stored dtype.
#pragma once

#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "formats/mmap.h"

namespace sq {

struct SafetensorsFile {
  std::shared_ptr<MappedFile> file;             // owns the bytes every view points into
  std::map<std::string, TensorView> tensors;
  std::map<std::string, std::string> metadata;  // "__metadata__"
};

// Headers larger than this are refused before anything is allocated.
inline constexpr uint64_t kMaxSafetensorsHeader = 100ull << 20;

// Maps and validates `path`: header length, JSON, dtypes, shapes against byte spans, offsets
// in range, no overlapping tensors. Throws Error naming the file (and tensor) on any problem.
SafetensorsFile OpenSafetensors(const std::string& path);

// Writes the tensors in the given order, contiguously (the spec forbids holes), via a temp
// file + rename. The header is padded with spaces so the data starts 8-byte aligned.
void WriteSafetensors(const std::string& path,
                      const std::vector<std::pair<std::string, TensorView>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// A tensor to be written whose bytes do not exist yet: the header needs only this.
struct TensorSpec {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t nbytes() const;
};

// Writes spec i's bytes (exactly specs[i].nbytes(), in as many pieces as it likes) to `out`.
using TensorFill = std::function<void(size_t index, std::ostream& out)>;

// The same file as WriteSafetensors, but the header is written first from the specs and each
// tensor's bytes come from `fill`, in order, so no tensor needs to be in memory beforehand.
// Throws Error naming the file and tensor when `fill` writes the wrong number of bytes; the
// temp file is then removed and nothing appears at `path`.
void WriteSafetensorsStreaming(const std::string& path, const std::vector<TensorSpec>& specs,
                               const TensorFill& fill,
                               const std::map<std::string, std::string>& metadata = {});

}  // namespace sq
