#include <catch2/catch.hpp>
#include <cmath>

#include "core/error.h"
#include "quant/int4_nibbles.h"
#include "quant/kv_quant.h"
#include "quant/quantizer.h"
#include "tests/test_util.h"

using namespace sq;
using sq::test::RandomMat;

TEST_CASE("int4 packing puts element 0 in the low nibble and round-trips", "[quant]") {
  const std::vector<int8_t> two = {1, -2};
  const auto packed = PackInt4(two, /*is_signed=*/true);
  REQUIRE(packed.size() == 1);
  CHECK(packed[0] == 0xE1);  // -2 = 0b1110 high, 1 low

  std::vector<int8_t> all;
  for (int rep = 0; rep < 3; ++rep)
    for (int v = -8; v <= 7; ++v) all.push_back(static_cast<int8_t>(v));
  all.push_back(-8);  // odd count: last high nibble is padding
  const auto p = PackInt4(all, true);
  CHECK(p.size() == (all.size() + 1) / 2);
  CHECK((p.back() >> 4) == 0);
  CHECK(UnpackInt4(p, all.size(), true) == all);

  std::vector<int8_t> u;
  for (int v = 0; v <= 15; ++v) u.push_back(static_cast<int8_t>(v));
  CHECK(UnpackInt4(PackInt4(u, false), u.size(), false) == u);

  CHECK_THROWS_AS(PackInt4(std::vector<int8_t>{8}, true), Error);
  CHECK_THROWS_AS(PackInt4(std::vector<int8_t>{-1}, false), Error);
}

TEST_CASE("activation fake-quant rounds half to even like ONNX Runtime", "[quant]") {
  // absmax 7 -> scale exactly 1, so x / s hits the ties exactly.
  Mat x(1, 8);
  x << 7.0f, 0.5f, 1.5f, 2.5f, -0.5f, -2.5f, 3.5f, -6.5f;
  Mat y = x;
  FakeQuantRows(y, {4, 1.0f});
  Mat expect(1, 8);
  expect << 7, 0, 2, 2, 0, -2, 4, -6;
  CHECK(y == expect);

  QuantGrid g{4, true};
  CHECK(QuantizeCode(2.5f, {1.0f, 0}, g) == 2);
  CHECK(QuantizeCode(3.5f, {1.0f, 0}, g) == 4);
  CHECK(QuantizeCode(-9.0f, {1.0f, 0}, g) == -8);  // clamped
  CHECK(QuantizeCode(7.6f, {1.0f, 0}, g) == 7);
}

TEST_CASE("activation fake-quant: fast path equals the scalar reference; zero rows stay 0", "[quant]") {
  Mat x = RandomMat(37, 200, 7);
  x.row(3).setZero();
  x(5, 9) = 40.0f;  // an outlier token
  for (int bits : {4, 8}) {
    for (float clip : {1.0f, 0.9f}) {
      Mat a = x, b = x;
      FakeQuantRows(a, {bits, clip});
      FakeQuantRowsRef(b, {bits, clip});
      CHECK(a == b);
      CHECK(a.row(3).isZero(0));
      CHECK(a.allFinite());
      // at most 2^bits distinct levels per row, all multiples of the row scale
      const float s = std::max(x.row(0).cwiseAbs().maxCoeff() * clip, kActScaleEps) /
                      static_cast<float>((1 << (bits - 1)) - 1);
      for (int j = 0; j < 200; ++j) {
        const float k = a(0, j) / s;
        CHECK(std::abs(k - std::round(k)) < 1e-4f);
      }
    }
  }
  Mat off = x;
  FakeQuantRows(off, {16, 1.0f});
  CHECK(off == x);
}

TEST_CASE("per-group weight quantizer: error <= scale/2 inside the clip range", "[quant]") {
  const Mat w = RandomMat(16, 200, 11);  // 200 = 3 * 64 + 8: a short last group
  for (bool sym : {true, false}) {
    for (bool search : {false, true}) {
      for (int bits : {4, 8}) {
        const QuantizedWeight q = QuantizeRtn(w, {bits, 64, sym, search});
        REQUIRE(q.group == 64);
        REQUIRE(q.n_groups() == 4);
        const Mat d = q.Dequantize();
        int inside = 0;
        for (int r = 0; r < 16; ++r) {
          for (int c = 0; c < 200; ++c) {
            const QuantParams p = q.Params(r, c / 64);
            const float lo = (q.grid.qmin() - p.zero) * p.scale, hi = (q.grid.qmax() - p.zero) * p.scale;
            const int code = q.Code(r, c);
            REQUIRE(code >= q.grid.qmin());
            REQUIRE(code <= q.grid.qmax());
            // Clipped by a searched ratio (without the search nothing is clipped: asymmetric
            // values up to half a step past the grid, from the rounded zero point, still round
            // to the end code).
            if (search && (w(r, c) < lo || w(r, c) > hi)) continue;
            ++inside;
            REQUIRE(std::abs(w(r, c) - d(r, c)) <= p.scale * 0.5f * (1 + 1e-5f));
          }
        }
        CHECK(inside > 16 * 200 * 9 / 10);
      }
    }
  }
}

TEST_CASE("clip search never increases the weight MSE; per-channel when G >= K", "[quant]") {
  Mat w = RandomMat(32, 96, 3);
  w(4, 7) = 12.0f;  // an outlier weight makes clipping worthwhile
  const Mat a = QuantizeRtn(w, {4, 32, true, false}).Dequantize();
  const Mat b = QuantizeRtn(w, {4, 32, true, true}).Dequantize();
  CHECK((w - b).squaredNorm() < (w - a).squaredNorm());
  CHECK(QuantizeRtn(w, {4, 128, true, false}).n_groups() == 1);
  CHECK(QuantizeRtn(w, {4, 0, true, false}).group == 96);
}

TEST_CASE("KV quantizer: asymmetric per token and group, error <= scale/2", "[quant]") {
  Mat x = RandomMat(9, 16, 5);
  x.row(2).setZero();
  x.row(4) = x.row(4).cwiseAbs() + Mat::Constant(1, 16, 3.0f);  // all positive
  for (int bits : {4, 8}) {
    Mat y = x;
    GroupKvQuantizer(bits, 8).Apply(y);
    CHECK(y.row(2).isZero(0));
    for (int t = 0; t < 9; ++t) {
      for (int g = 0; g < 2; ++g) {
        auto seg = x.row(t).segment(g * 8, 8);
        const float s = std::max(std::max(seg.maxCoeff(), 0.0f) - std::min(seg.minCoeff(), 0.0f),
                                 kActScaleEps) / ((1 << bits) - 1);
        for (int j = 0; j < 8; ++j) REQUIRE(std::abs(y(t, g * 8 + j) - seg(j)) <= s * 0.5f * 1.0001f);
      }
    }
  }
  Mat bad = x;
  CHECK_THROWS_AS(GroupKvQuantizer(4, 5).Apply(bad), Error);
}
