// libFuzzer target: a safetensors file (8-byte header length, JSON header, data). Every view
// the parser hands out must lie inside the mapped file: read its first and last byte.
#include <cstdint>

#include "core/error.h"
#include "formats/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = sq::fuzz::WriteScratch("model.safetensors", data, size);
  try {
    const sq::SafetensorsFile f = sq::OpenSafetensors(path);
    volatile unsigned sum = 0;
    for (const auto& [name, v] : f.tensors) {
      if (v.nbytes() == 0) continue;
      const auto* p = reinterpret_cast<const uint8_t*>(v.data);
      sum += p[0] + p[v.nbytes() - 1];
    }
  } catch (const sq::Error&) {
  }
  return 0;
}
