// The packed GEMM (core/gemm.h) against Eigen's product (EigenLinear, the path it replaced), on
// shapes that are not multiples of any block size, for each weight dtype.
#include "core/gemm.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "core/amx.h"
#include "core/gemm_amx.h"
#include "core/numeric.h"
#include "core/threads.h"
#include "model/linear.h"
#include "tests/test_util.h"

using namespace sq;
using sq::test::RandomMat;

namespace {

// A weight [n, k] stored as `dtype`, with the float values it widens to.
struct StoredWeight {
  DType dtype;
  int n, k;
  std::vector<uint16_t> narrow;
  Mat widened;
  Mat f32;  // the F32 storage (dtype kF32 only)

  TensorView View() const {
    const void* p = dtype == DType::kF32 ? static_cast<const void*>(f32.data()) : narrow.data();
    return {dtype, {n, k}, static_cast<const std::byte*>(p)};
  }
};

StoredWeight MakeWeight(DType dtype, int n, int k, uint64_t seed) {
  StoredWeight s{dtype, n, k, {}, RandomMat(n, k, seed), {}};
  if (dtype == DType::kF32) {
    s.f32 = s.widened;
    return s;
  }
  s.narrow.resize(static_cast<size_t>(n) * k);
  for (size_t i = 0; i < s.narrow.size(); ++i) {
    const float v = s.widened.data()[i];
    s.narrow[i] = dtype == DType::kBF16 ? FloatToBf16(v) : FloatToF16(v);
  }
  s.widened = ToMat(s.View());
  return s;
}

// Two float sums of the same K products in different orders differ by at most
// 2 * K * eps * sum |x_k w_k| (each is within K * eps of the exact sum): a bound per output that
// holds for any order, so a wrong or missing term (of order 1/K of that sum) fails it.
double WorstExcess(const Mat& x, const Mat& w, const Mat& y, const Mat& ref) {
  const Mat magnitude = x.cwiseAbs() * w.cwiseAbs().transpose();
  const double gamma = 2.0 * x.cols() * std::numeric_limits<float>::epsilon();
  double worst = 0;
  for (Eigen::Index i = 0; i < y.size(); ++i) {
    const double diff = std::abs(double{y.data()[i]} - ref.data()[i]);
    worst = std::max(worst, diff / (gamma * magnitude.data()[i] + 1e-30));
  }
  return worst;  // <= 1 within the bound
}

// x with every value rounded to the nearest bf16.
Mat RoundedToBf16(const Mat& x) {
  return x.unaryExpr([](float v) { return Bf16ToFloat(FloatToBf16(v)); });
}

// Sets the matmul precision for one scope.
struct PrecisionScope {
  explicit PrecisionScope(MatmulPrecision p) { SetMatmulPrecision(p); }
  ~PrecisionScope() { SetMatmulPrecision(MatmulPrecision::kF32); }
};

}  // namespace

TEST_CASE("the packed GEMM agrees with Eigen's x W^T on awkward shapes", "[model][gemm]") {
  if (!kHavePackedGemm) return;  // the portable build multiplies through Eigen only
  const DType dtypes[] = {DType::kF32, DType::kBF16, DType::kF16};
  for (DType dtype : dtypes) {
    for (int k : {1, 3, 100, 257}) {
      for (int n : {1, 17, 40, 1000}) {
        const StoredWeight w = MakeWeight(dtype, n, k, 100 + k + n);
        for (int m : {1, 2, 3, 5, 7, 513}) {
          INFO(DTypeName(dtype) << " M " << m << " K " << k << " N " << n);
          const Mat x = RandomMat(m, k, 7 + m);
          Mat y, ref;
          PackedGemm(x, w.View(), y);
          EigenLinear(x, w.View(), ref);
          REQUIRE(y.rows() == m);
          REQUIRE(y.cols() == n);
          CHECK(WorstExcess(x, w.widened, y, ref) <= 1.0);
        }
      }
    }
  }
}

TEST_CASE("the packed GEMM sums deep products across its depth blocks", "[model][gemm]") {
  if (!kHavePackedGemm) return;
  // K past two depth blocks with a tail that is no multiple of 8; N past a thread's W block.
  const StoredWeight w = MakeWeight(DType::kBF16, 2100, 1100, 3);
  for (int m : {1, 3, 100}) {
    INFO("M " << m);
    const Mat x = RandomMat(m, 1100, 4);
    Mat y, ref;
    PackedGemm(x, w.View(), y);
    EigenLinear(x, w.View(), ref);
    CHECK(WorstExcess(x, w.widened, y, ref) <= 1.0);
  }
}

TEST_CASE("the packed GEMM is bit-identical across thread counts and weight dtypes",
          "[model][gemm]") {
  if (!kHavePackedGemm) return;
  const int before = NumThreads();
  for (int m : {1, 3, 513}) {
    const StoredWeight bf16 = MakeWeight(DType::kBF16, 1000, 700, 5);
    const StoredWeight f32{DType::kF32, 1000, 700, {}, bf16.widened, bf16.widened};
    const Mat x = RandomMat(m, 700, 6);
    Mat expected, y;
    SetNumThreads(1);
    PackedGemm(x, bf16.View(), expected);
    for (int threads : {2, 3}) {
      INFO("M " << m << ", " << threads << " threads");
      SetNumThreads(threads);
      PackedGemm(x, bf16.View(), y);
      CHECK(y == expected);
      PackedGemm(x, f32.View(), y);  // the same values stored as F32: the same products
      CHECK(y == expected);
    }
  }
  SetNumThreads(before);
}

TEST_CASE("the packed GEMM handles empty products", "[model][gemm]") {
  if (!kHavePackedGemm) return;
  const StoredWeight w = MakeWeight(DType::kF32, 5, 0, 1);
  Mat y;
  PackedGemm(Mat(3, 0), w.View(), y);
  CHECK(y == Mat::Zero(3, 5));
  PackedGemm(Mat(0, 0), w.View(), y);
  CHECK(y.rows() == 0);
}

// --matmul-precision bf16: bf16 weights meet x rounded to bf16, on the AMX tiles where the CPU
// has them (4+ rows) and on the float kernel otherwise. Rounding x moves a product by up to
// 2^-9 of |x w|: at K = 1 and 31 that is far past the 2 K eps bound, so a path that skipped the
// rounding fails there (tried); deeper K checks the tiles' depth blocks and tails.
TEST_CASE("bf16 matmul precision sums exact products of bf16-rounded inputs", "[model][gemm]") {
  if (!kHavePackedGemm) return;
  if (!AmxBf16Available()) WARN("no AMX on this CPU: only the float-kernel bf16 path runs");
  const PrecisionScope bf16(MatmulPrecision::kBf16);
  for (int k : {1, 31, 33, 300, 2100}) {  // tails of a 32-deep tile; past two 1024-deep blocks
    for (int n : {1, 17, 33, 64, 70}) {   // tails of a 32-channel pair; 64 fills pairs
      const StoredWeight w = MakeWeight(DType::kBF16, n, k, 200 + k + n);
      // The dot path, then tails of a 32-row block; 64 x 64 writes straight into y.
      for (int m : {1, 3, 4, 17, 33, 64, 70}) {
        INFO("M " << m << " K " << k << " N " << n << ", " << MatmulPrecisionName());
        const Mat x = RandomMat(m, k, 9 + m);  // float draws: almost none is a bf16 value
        const Mat xr = RoundedToBf16(x);
        Mat y;
        PackedGemm(x, w.View(), y);
        const Mat ref = (xr.cast<double>() * w.widened.cast<double>().transpose()).cast<float>();
        CHECK(WorstExcess(xr, w.widened, y, ref) <= 1.0);
      }
    }
  }
}

TEST_CASE("AMX products depend on neither the row count nor the thread count", "[model][gemm]") {
  // A CPU and kernel that allow the tiles get the kernel: a build that lost it fails here.
  CHECK(AmxBf16Available() == AmxUsable(AmxOp::kBf16));
  if (!AmxBf16Available()) {
    WARN("no AMX on this CPU: the AMX kernel is not built or not granted");
    Mat y;
    CHECK_THROWS(AmxBf16Gemm(Mat(4, 4), TensorView{DType::kBF16, {4, 4}, nullptr}, y));
    return;
  }
  const PrecisionScope bf16(MatmulPrecision::kBf16);
  const int before = NumThreads();
  const StoredWeight w = MakeWeight(DType::kBF16, 300, 1500, 11);
  const Mat x = RandomMat(70, 1500, 12);
  Mat all, y;
  SetNumThreads(1);
  AmxBf16Gemm(x, w.View(), all);
  SetNumThreads(2);
  PackedGemm(x, w.View(), y);  // 4+ rows of bf16 weights: PackedGemm takes the tiles
  CHECK(y == all);
  AmxBf16Gemm(x.topRows(5), w.View(), y);  // rows are independent of the block they sit in
  CHECK(y == all.topRows(5));
  SetNumThreads(before);
  const StoredWeight f32 = MakeWeight(DType::kF32, 3, 4, 1);
  CHECK_THROWS_WITH(AmxBf16Gemm(Mat(4, 4), f32.View(), y), Catch::Contains("not a bf16 weight"));
}
