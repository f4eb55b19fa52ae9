#include "quant/int4_nibbles.h"

#include <string>

#include "core/error.h"

namespace sq {

std::vector<uint8_t> PackInt4(std::span<const int8_t> values, bool is_signed) {
  const int lo = is_signed ? -8 : 0, hi = is_signed ? 7 : 15;
  std::vector<uint8_t> out(Int4Bytes(values.size()), 0);
  for (size_t i = 0; i < values.size(); ++i) {
    Check(values[i] >= lo && values[i] <= hi,
          "PackInt4: value " + std::to_string(values[i]) + " at index " + std::to_string(i) +
              " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    SetInt4(out.data(), i, values[i]);
  }
  return out;
}

std::vector<int8_t> UnpackInt4(std::span<const uint8_t> packed, size_t n, bool is_signed) {
  Check(packed.size() >= Int4Bytes(n), [&] {
    return "UnpackInt4: " + std::to_string(packed.size()) + " bytes hold fewer than " +
           std::to_string(n) + " values";
  });
  std::vector<int8_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<int8_t>(Int4At(packed.data(), i, is_signed));
  return out;
}

}  // namespace sq
