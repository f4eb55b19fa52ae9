#include <catch2/catch.hpp>

#include "quant/hadamard.h"
#include "quant/online_rotation.h"
#include "tests/test_util.h"

using namespace sq;
using sq::test::RandomMat;

namespace {

// Named tolerance: a rotation reorders float sums; entries are O(1), errors near epsilon.
constexpr float kRotationTolerance = 2e-5f;
// A fast product x Q against the matrix product: entries of x Q grow like sqrt(n), and so
// does their rounding.
constexpr float kProductTolerance = 1e-4f;

}  // namespace

TEST_CASE("Hadamard constructions are +-1 with H H^T = n I", "[quant]") {
  for (int n : {1, 2, 4, 8, 12, 20, 24, 28, 36, 40, 44, 48, 64, 96, 192, 512}) {
    Mat h;
    INFO("order " << n);
    REQUIRE(HadamardMatrix(n, &h));
    REQUIRE(h.rows() == n);
    CHECK((h.array().abs() == 1.0f).all());
    CHECK((h * h.transpose() - n * Mat::Identity(n, n)).cwiseAbs().maxCoeff() == 0.0f);
  }
  CHECK(HadamardBase(192) == 12);  // bytelm hidden: 16 x Paley I (q = 11)
  CHECK(HadamardBase(28) == 28);   // Paley II (q = 13)
  CHECK(HadamardBase(512) == 1);
  // No construction here: 172 = 4 * 43 (stories260K's FFN), 6, 3.
  for (int n : {172, 6, 3, 52}) {
    Mat h;
    CHECK_FALSE(HadamardMatrix(n, &h));
    CHECK(HadamardBase(n) == 0);
  }
}

TEST_CASE("Rotation is orthogonal and its fast path equals the dense reference", "[quant]") {
  for (int n : {8, 12, 48, 64, 172, 192, 512}) {
    INFO("size " << n);
    Rotation r(n, 7);
    const Mat& q = r.matrix();
    CHECK((q * q.transpose() - Mat::Identity(n, n)).cwiseAbs().maxCoeff() < kRotationTolerance);
    CHECK(r.is_hadamard() == (n != 172));
    Mat x = RandomMat(5, n, n), ref = x;
    r.Apply(x);
    r.ApplyRef(ref);
    CHECK((x - ref).cwiseAbs().maxCoeff() < kRotationTolerance * 10);
    CHECK(std::abs(x.row(2).norm() - ref.row(2).norm()) < 1e-3f);
  }
  // Different seeds give different sign patterns; the same seed the same matrix.
  CHECK((Rotation(64, 1).matrix() - Rotation(64, 2).matrix()).cwiseAbs().maxCoeff() > 0.1f);
  CHECK((Rotation(64, 1).matrix() - Rotation(64, 1).matrix()).cwiseAbs().maxCoeff() == 0.0f);
}

TEST_CASE("A Hadamard rotation's Kronecker factors rebuild its matrix, and are small", "[quant]") {
  // 1792 = 64 x Paley 28 (q = 13), the family of 8B's 14336 = 512 x 28.
  for (int n : {1, 8, 12, 96, 192, 512, 1792}) {
    INFO("size " << n);
    const Rotation r(n, 3);
    const KroneckerFactors f = r.Factors();
    REQUIRE(f.left.rows() * f.right.rows() == n);
    Mat k(n, n);
    for (Eigen::Index i = 0; i < f.left.rows(); ++i) {
      for (Eigen::Index j = 0; j < f.left.cols(); ++j) {
        k.block(i * f.right.rows(), j * f.right.cols(), f.right.rows(), f.right.cols()) =
            f.left(i, j) * f.right;
      }
    }
    const Mat q = f.scaled_signs.asDiagonal() * k;
    CHECK((q - r.matrix()).cwiseAbs().maxCoeff() < 1e-6f);
    CHECK(f.left == f.left.transpose());  // x Q = left^T X right uses left as it is
    CHECK(f.left.rows() * f.left.rows() <= n);
  }
  // 8B's down_proj width: two products of 64 and 224 a row, not one of 14336 (its matrix is
  // never built here: the constructor and Factors need only the signs and the Paley block).
  const KroneckerFactors big = Rotation(14336, 3).Factors();
  CHECK(big.left.rows() == 64);
  CHECK(big.right.rows() == 224);
  CHECK_THROWS_WITH(Rotation(172, 3).Factors(), Catch::Contains("is not a Hadamard"));
}

TEST_CASE("A given (dense) rotation applied in row blocks equals one product", "[quant]") {
  // An embedding-sized input crosses the 4096-row blocks Apply uses to bound its temporary.
  const Rotation r(Rotation(24, 5).matrix(), "given 24");
  CHECK_FALSE(r.is_hadamard());
  Mat x = RandomMat(9000, 24, 11), ref = x;
  r.Apply(x);
  r.ApplyRef(ref);
  CHECK((x - ref).cwiseAbs().maxCoeff() < kRotationTolerance * 10);
  CHECK((x.row(8999) - ref.row(8999)).cwiseAbs().maxCoeff() < kRotationTolerance * 10);
}

TEST_CASE("FwhtRows equals multiplication by Sylvester's matrix", "[quant]") {
  Mat h;
  REQUIRE(HadamardMatrix(32, &h));
  Mat x = RandomMat(3, 32, 3), ref = x * h;
  FwhtRows(x);
  CHECK((x - ref).cwiseAbs().maxCoeff() < kProductTolerance);
  Mat bad(1, 12);
  CHECK_THROWS(FwhtRows(bad));
}

TEST_CASE("A Hadamard rotation spreads a one-hot outlier over every channel", "[quant]") {
  // The reason rotation helps int4: a row with one huge entry becomes flat.
  Rotation r(192, 3);
  Mat x = Mat::Zero(1, 192);
  x(0, 53) = 130.0f;
  r.Apply(x);
  CHECK(x.cwiseAbs().maxCoeff() == Approx(130.0f / std::sqrt(192.0f)).epsilon(1e-4));
  CHECK(x.cwiseAbs().minCoeff() == Approx(130.0f / std::sqrt(192.0f)).epsilon(1e-4));
}

TEST_CASE("OnlineRotation computes inner(x Q) and checks its size", "[quant]") {
  Mat w = RandomMat(6, 12, 4);
  TensorView wv;
  wv.shape = {6, 12};
  wv.data = reinterpret_cast<const std::byte*>(w.data());
  auto rot = std::make_shared<const Rotation>(12, 5);
  Mat wq = w * rot->matrix();
  TensorView wqv = wv;
  wqv.data = reinterpret_cast<const std::byte*>(wq.data());
  OnlineRotation lin(std::make_shared<DenseLinear>(wqv), rot);
  Mat x = RandomMat(4, 12, 6), y, ref = x * w.transpose();
  lin.Apply(x, y);
  CHECK((y - ref).cwiseAbs().maxCoeff() < kProductTolerance);
  CHECK_THROWS(OnlineRotation(std::make_shared<DenseLinear>(wqv),
                              std::make_shared<const Rotation>(8, 1)));
}
