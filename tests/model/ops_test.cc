#include <utility>
#include <catch2/catch.hpp>

#include "core/numeric.h"
#include "core/threads.h"
#include "model/linear.h"
#include "model/ops.h"
#include "tests/test_util.h"

using namespace sq;
using sq::test::RandomMat;

namespace {

// Named tolerance: fast ops reorder float sums; relative error stays near float epsilon.
constexpr float kOpTolerance = 2e-5f;
// The same rotation of the same numbers, only stored in another column order.
constexpr float kReorderedTolerance = 1e-6f;

float MaxRelDiff(const Mat& a, const Mat& b) {
  return (a - b).cwiseAbs().maxCoeff() / std::max(1e-12f, b.cwiseAbs().maxCoeff());
}

}  // namespace

TEST_CASE("RmsNorm equals its scalar reference", "[model]") {
  Mat x = RandomMat(7, 48, 1, 3.0f);
  Vec w = RandomMat(48, 1, 2).col(0);
  CHECK(MaxRelDiff(RmsNorm(x, w, 1e-5f), RmsNormRef(x, w, 1e-5f)) < kOpTolerance);
  CHECK(MaxRelDiff(RmsNorm(x, Vec(), 1e-6f), RmsNormRef(x, Vec(), 1e-6f)) < kOpTolerance);
  // Weightless output has unit RMS per row.
  Mat y = RmsNorm(x, Vec(), 0.0f);
  CHECK(std::abs(y.row(3).squaredNorm() / 48 - 1.0f) < 1e-5f);
}

TEST_CASE("RoPE equals its scalar reference for both pairings", "[model]") {
  ModelConfig c;
  c.head_dim = 16;
  c.rope_theta = 10000;
  for (RopePairing p : {RopePairing::kHalf, RopePairing::kAdjacent}) {
    Mat x = RandomMat(9, 3 * 16, 3), y = x;
    RopeTable t = MakeRopeTable(c, 9);
    ApplyRope(x, 16, t, p);
    ApplyRopeRef(y, 16, t, p);
    CHECK(MaxRelDiff(x, y) < kOpTolerance);
    // Rotation preserves each head's norm, and position 0 is the identity.
    Mat z = RandomMat(9, 16, 4), z0 = z;
    ApplyRope(z, 16, t, p);
    CHECK(std::abs(z.row(5).norm() - z0.row(5).norm()) < 1e-4f);
    CHECK((z.row(0) - z0.row(0)).cwiseAbs().maxCoeff() == 0.0f);
  }
}

TEST_CASE("RoPE pairings differ exactly by a permutation of dimensions", "[model]") {
  // Adjacent pairs (2i, 2i+1) become half pairs (i, i+hd/2) after permuting dims, which is
  // what the llama2.c -> HF conversion does to q/k rows.
  ModelConfig c;
  c.head_dim = 8;
  RopeTable t = MakeRopeTable(c, 5);
  Mat x = RandomMat(5, 8, 5), xa = x, xh(5, 8);
  for (int i = 0; i < 4; ++i) {
    xh.col(i) = x.col(2 * i);
    xh.col(i + 4) = x.col(2 * i + 1);
  }
  ApplyRope(xa, 8, t, RopePairing::kAdjacent);
  ApplyRope(xh, 8, t, RopePairing::kHalf);
  for (int i = 0; i < 4; ++i) {
    CHECK((xa.col(2 * i) - xh.col(i)).cwiseAbs().maxCoeff() < kReorderedTolerance);
    CHECK((xa.col(2 * i + 1) - xh.col(i + 4)).cwiseAbs().maxCoeff() < kReorderedTolerance);
  }
}

TEST_CASE("llama3 rope_scaling matches the published rule", "[model]") {
  ModelConfig c;
  c.head_dim = 64;
  c.rope_theta = 500000;
  c.rope_scaling = {true, 32.0f, 1.0f, 4.0f, 8192};
  const auto scaled = RopeInvFreq(c);
  c.rope_scaling.enabled = false;
  const auto plain = RopeInvFreq(c);
  CHECK(scaled[0] == plain[0]);                      // short wavelength: unchanged
  CHECK(scaled.back() == Approx(plain.back() / 32));  // long wavelength: divided by factor
}

TEST_CASE("causal attention equals its scalar reference", "[model]") {
  for (int T : {11, 150}) {  // one block of queries, and three (the last partial)
    Mat q = RandomMat(T, 8, 6), k = RandomMat(T, 8, 7), v = RandomMat(T, 8, 8);
    Mat o1, o2, p1, p2;
    HeadAttention(q, k, v, o1, &p1);
    HeadAttentionRef(q, k, v, o2, &p2);
    CHECK(MaxRelDiff(o1, o2) < kOpTolerance);
    CHECK(MaxRelDiff(p1, p2) < kOpTolerance);
    for (int t = 0; t < T; ++t) {
      CHECK(p1.row(t).sum() == Approx(1.0f).epsilon(1e-5));
      if (t + 1 < T) CHECK(p1.row(t).tail(T - 1 - t).cwiseAbs().maxCoeff() == 0.0f);  // causal
    }
  }
}

TEST_CASE("sliding-window attention sees exactly the last `window` keys", "[model][arch]") {
  // One block of queries; then three blocks, with a window inside a block and one across blocks.
  for (auto [T, window] : {std::pair{11, 4}, {150, 4}, {150, 70}}) {
    Mat q = RandomMat(T, 8, 6), k = RandomMat(T, 8, 7), v = RandomMat(T, 8, 8);
    Mat o1, o2, p1, p2;
    HeadAttention(q, k, v, o1, &p1, {window});
    HeadAttentionRef(q, k, v, o2, &p2, {window});
    CHECK(MaxRelDiff(o1, o2) < kOpTolerance);
    CHECK(MaxRelDiff(p1, p2) < kOpTolerance);
    for (int t = 0; t < T; ++t) {  // HF: key j is kept iff j > t - window (t itself too)
      for (int j = 0; j < T; ++j) CHECK((p1(t, j) > 0) == (j <= t && j > t - window));
    }
  }
}

TEST_CASE("attention with Gemma's scale and soft-cap equals its reference", "[model][arch]") {
  const int T = 90;
  Mat q = RandomMat(T, 8, 16, 3.0f), k = RandomMat(T, 8, 17, 3.0f), v = RandomMat(T, 8, 18);
  Mat o1, o2, p1, p2, plain;
  const AttnShape shape{5, 0.25f, 2.0f};
  HeadAttention(q, k, v, o1, &p1, shape);
  HeadAttentionRef(q, k, v, o2, &p2, shape);
  CHECK(MaxRelDiff(o1, o2) < kOpTolerance);
  CHECK(MaxRelDiff(p1, p2) < kOpTolerance);
  HeadAttention(q, k, v, plain, nullptr, {5});  // the cap and the scale change the result
  CHECK(MaxRelDiff(o1, plain) > 1e-2);
}

TEST_CASE("GeGLU is PyTorch's tanh gelu times up", "[model][arch]") {
  // torch.nn.functional.gelu(torch.tensor([-3., -1., 0.5, 2.]), approximate="tanh")
  const float want[] = {-0.00363739f, -0.1588080f, 0.3457140f, 1.9545977f};
  const float x[] = {-3.0f, -1.0f, 0.5f, 2.0f};
  for (int i = 0; i < 4; ++i) CHECK(GeluTanh(x[i]) == Approx(want[i]).epsilon(1e-5).margin(1e-6));
  Mat g = RandomMat(5, 33, 9, 4.0f), u = RandomMat(5, 33, 10);
  CHECK(GatedActivation(FfnActivation::kGeluTanh, g, u)(2, 3) == GeluTanh(g(2, 3)) * u(2, 3));
}

TEST_CASE("SwiGLU equals its scalar reference", "[model]") {
  Mat g = RandomMat(5, 33, 9, 4.0f), u = RandomMat(5, 33, 10);
  CHECK(MaxRelDiff(SwiGlu(g, u), SwiGluRef(g, u)) < kOpTolerance);
}

TEST_CASE("a BF16 DenseLinear equals the same linear on its widened F32 weights, bit for bit",
          "[model]") {
  // 4100 output rows: two widening chunks (4096 + 4) on the Eigen path, and a last channel
  // panel of 4 (of 16) and several thread chunks on the packed one.
  const Mat w = RandomMat(4100, 24, 7);
  std::vector<uint16_t> bf16(static_cast<size_t>(w.size()));
  for (Eigen::Index i = 0; i < w.size(); ++i) bf16[i] = FloatToBf16(w.data()[i]);
  const TensorView narrow{DType::kBF16, {4100, 24},
                          reinterpret_cast<const std::byte*>(bf16.data())};
  const auto widened = MakeOwned(ToMat(narrow), {4100, 24});
  const Mat x = RandomMat(5, 24, 8);
  Mat expected, y;
  DenseLinear(widened->View()).Apply(x, expected);
  const int before = NumThreads();
  for (int threads : {1, 2}) {
    SetNumThreads(threads);
    DenseLinear(narrow).Apply(x, y);
    CHECK(y == expected);
  }
  SetNumThreads(before);
}
