#include "formats/safetensors.h"

#include <algorithm>
#include <cstring>
#include <ostream>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "formats/json_util.h"

namespace sq {

namespace {

using nlohmann::json;

struct Span {
  uint64_t begin, end;
  std::string name;
};

// Reads one header entry into `view`, checking its fields; returns its byte span.
Span ParseEntry(const std::string& path, const std::string& name, const json& e,
                const std::byte* data, uint64_t data_size, TensorView* view) {
  const std::string where = path + ": tensor " + name;
  Check(e.is_object(), where + ": header entry is not an object");
  Check(e.contains("dtype") && e["dtype"].is_string(), where + ": missing string 'dtype'");
  Check(e.contains("shape") && e["shape"].is_array(), where + ": missing array 'shape'");
  Check(e.contains("data_offsets") && e["data_offsets"].is_array() &&
            e["data_offsets"].size() == 2,
        where + ": 'data_offsets' must be an array [begin, end]");
  const std::string dtype = e["dtype"].get<std::string>();
  Check(ParseDType(dtype, &view->dtype),
        where + ": unknown dtype '" + dtype + "' (known: F32, F16, BF16, I32, I64, U8, I8)");
  uint64_t numel = 1;
  for (const json& d : e["shape"]) {
    Check(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0),
          where + ": shape " + e["shape"].dump() + " has a negative or non-integer dim");
    const uint64_t dim = d.get<uint64_t>();
    Check(dim < (1ull << 40) && !__builtin_mul_overflow(numel, dim, &numel) &&
              numel < (1ull << 48),
          where + ": shape " + e["shape"].dump() + " overflows");
    view->shape.push_back(static_cast<int64_t>(dim));
  }
  Span s{0, 0, name};
  for (int i = 0; i < 2; ++i) {
    const json& o = e["data_offsets"][i];
    Check(o.is_number_unsigned() || (o.is_number_integer() && o.get<int64_t>() >= 0),
          where + ": data_offsets " + e["data_offsets"].dump() + " must be non-negative integers");
    (i == 0 ? s.begin : s.end) = o.get<uint64_t>();
  }
  Check(s.begin <= s.end, where + ": data_offsets " + e["data_offsets"].dump() + " are reversed");
  Check(s.end <= data_size, where + ": data_offsets " + e["data_offsets"].dump() +
                                " run past the end of the data (" + std::to_string(data_size) +
                                " bytes)");
  const uint64_t want = numel * DTypeSize(view->dtype);
  Check(want == s.end - s.begin, where + ": shape " + view->ShapeString() + " " + dtype +
                                     " needs " + std::to_string(want) + " bytes, data_offsets " +
                                     e["data_offsets"].dump() + " span " +
                                     std::to_string(s.end - s.begin));
  view->data = data + s.begin;
  return s;
}

// The JSON header for `specs` laid out contiguously in order, padded with spaces so the data
// starts 8-byte aligned.
std::string HeaderText(const std::string& path, const std::vector<TensorSpec>& specs,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const TensorSpec& s : specs) {
    Check(s.name != "__metadata__", path + ": '__metadata__' is not a valid tensor name");
    Check(!header.contains(s.name), path + ": tensor " + s.name + " given twice");
    header[s.name] = {{"dtype", DTypeName(s.dtype)},
                      {"shape", s.shape},
                      {"data_offsets", {offset, offset + s.nbytes()}}};
    offset += s.nbytes();
  }
  std::string text = header.dump();
  text.append((8 - (8 + text.size()) % 8) % 8, ' ');
  return text;
}

}  // namespace

SafetensorsFile OpenSafetensors(const std::string& path) {
  SafetensorsFile out;
  out.file = std::make_shared<MappedFile>(path);
  const uint64_t size = out.file->size();
  Check(size >= 8, path + ": file is " + std::to_string(size) +
                       " bytes, shorter than the 8-byte safetensors header length");
  uint8_t len_bytes[8];
  std::memcpy(len_bytes, out.file->data(), 8);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];  // little-endian
  Check(header_len <= kMaxSafetensorsHeader,
        path + ": header length " + std::to_string(header_len) + " exceeds the " +
            std::to_string(kMaxSafetensorsHeader) + "-byte limit (corrupt or not safetensors)");
  Check(header_len <= size - 8, path + ": header length " + std::to_string(header_len) +
                                    " runs past the end of the file (" + std::to_string(size) +
                                    " bytes)");
  const char* text = reinterpret_cast<const char*>(out.file->data()) + 8;
  const json header = ParseJson(std::string(text, header_len), path + " header");
  Check(header.is_object(), path + ": header is not a JSON object");

  const std::byte* data = out.file->data() + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;
  std::vector<Span> spans;
  for (const auto& [name, e] : header.items()) {
    if (name == "__metadata__") {
      Check(e.is_object(), path + ": __metadata__ is not an object");
      for (const auto& [k, v] : e.items()) {
        Check(v.is_string(), path + ": __metadata__ value for '" + k + "' is not a string");
        out.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    TensorView view;
    spans.push_back(ParseEntry(path, name, e, data, data_size, &view));
    out.tensors[name] = std::move(view);
  }
  // Overlap check: sorted by begin, each non-empty tensor must start at or after the previous
  // non-empty one's end. Zero-byte tensors own no bytes and may share an offset.
  std::sort(spans.begin(), spans.end(),
            [](const Span& a, const Span& b) { return a.begin < b.begin; });
  const Span* prev = nullptr;
  for (const Span& s : spans) {
    if (s.begin == s.end) continue;
    Check(!prev || s.begin >= prev->end,
          path + ": tensors " + (prev ? prev->name : "") + " [" +
              (prev ? std::to_string(prev->begin) + ", " + std::to_string(prev->end) : "") +
              ") and " + s.name + " [" + std::to_string(s.begin) + ", " + std::to_string(s.end) +
              ") overlap");
    prev = &s;
  }
  return out;
}

uint64_t TensorSpec::nbytes() const {
  uint64_t n = DTypeSize(dtype);
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

void WriteSafetensorsStreaming(const std::string& path, const std::vector<TensorSpec>& specs,
                               const TensorFill& fill,
                               const std::map<std::string, std::string>& metadata) {
  const std::string text = HeaderText(path, specs, metadata);
  WriteFileAtomic(path, [&](std::ostream& out) {
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(text.size() >> (8 * i));
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(text.data(), text.size());
    for (size_t i = 0; i < specs.size(); ++i) {
      const auto begin = out.tellp();
      fill(i, out);
      Check(out.good(), path + ": write failed in tensor " + specs[i].name + " (disk full?)");
      const auto written = static_cast<uint64_t>(out.tellp() - begin);
      Check(written == specs[i].nbytes(),
            path + ": tensor " + specs[i].name + " got " + std::to_string(written) +
                " bytes, its shape and dtype need " + std::to_string(specs[i].nbytes()));
    }
  });
}

void WriteSafetensors(const std::string& path,
                      const std::vector<std::pair<std::string, TensorView>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<TensorSpec> specs;
  for (const auto& [name, v] : tensors) {
    Check(!v.empty() || v.numel() == 0, path + ": tensor " + name + " has no data");
    specs.push_back({name, v.dtype, v.shape});
  }
  WriteSafetensorsStreaming(path, specs, [&](size_t i, std::ostream& out) {
    const TensorView& v = tensors[i].second;
    if (v.nbytes() > 0) out.write(reinterpret_cast<const char*>(v.data), v.nbytes());
  }, metadata);
}

}  // namespace sq
