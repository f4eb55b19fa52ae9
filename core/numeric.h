// Number-format helpers: half/bfloat16 conversion and the rounding ONNX Runtime uses.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace sq {

// Round half to even, as ONNX Runtime's Round and QuantizeLinear do (0.5 -> 0, 1.5 -> 2).
// std::nearbyint honours the current rounding mode, which is round-to-nearest-even unless
// someone changed it; sinkquant never does.
inline float RoundHalfEven(float x) { return std::nearbyint(x); }

inline float Bf16ToFloat(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round-to-nearest-even float -> bfloat16 (NaN stays NaN).
inline uint16_t FloatToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

float F16ToFloat(uint16_t h);
uint16_t FloatToF16(float f);

}  // namespace sq
