#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "core/numeric.h"

using namespace sq;

TEST_CASE("RoundHalfEven rounds ties to even like ONNX Runtime's Round", "[core]") {
  CHECK(RoundHalfEven(0.5f) == 0.0f);
  CHECK(RoundHalfEven(1.5f) == 2.0f);
  CHECK(RoundHalfEven(2.5f) == 2.0f);
  CHECK(RoundHalfEven(-0.5f) == 0.0f);
  CHECK(RoundHalfEven(-1.5f) == -2.0f);
  CHECK(RoundHalfEven(2.4f) == 2.0f);
  CHECK(RoundHalfEven(-2.6f) == -3.0f);
}

TEST_CASE("f16 round trip is exact for every finite half value", "[core]") {
  int checked = 0;
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if (((h >> 10) & 0x1f) == 0x1f) continue;  // Inf/NaN
    float f = F16ToFloat(static_cast<uint16_t>(h));
    REQUIRE(FloatToF16(f) == h);
    ++checked;
  }
  CHECK(checked == 63488);
  CHECK(F16ToFloat(0x3c00) == 1.0f);
  CHECK(F16ToFloat(0x0001) == std::ldexp(1.0f, -24));
  CHECK(FloatToF16(65520.0f) == 0x7c00);  // rounds past the largest half -> Inf
  CHECK(FloatToF16(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);  // tie -> even
}

TEST_CASE("bf16 conversion rounds to nearest even", "[core]") {
  CHECK(Bf16ToFloat(FloatToBf16(1.0f)) == 1.0f);
  CHECK(FloatToBf16(1.0f + std::ldexp(1.0f, -8)) == 0x3f80);  // tie -> even (down)
  CHECK(FloatToBf16(1.0f + 3 * std::ldexp(1.0f, -8)) == 0x3f82);  // tie -> even (up)
  CHECK(std::isnan(Bf16ToFloat(FloatToBf16(std::numeric_limits<float>::quiet_NaN()))));
}
