#include "model/linear.h"

#include <vector>

#include "core/error.h"
#include "core/gemm.h"
#include "core/parallel_blocks.h"

namespace sq {

namespace {
// Output channels widened from F16/BF16 at a time: bounds the float copy of a large weight
// (an lm_head of 150k rows would otherwise need a 600 MB float copy per call).
constexpr int64_t kWidenRows = 4096;

// The float copy of rows [r0, r0 + n) of an F16/BF16 weight, into a buffer reused across calls:
// a fresh one per call (235 MB for an 8B down_proj) cost page zeroing and an munmap every call,
// per window. Rows are widened in parallel; the values do not depend on the split.
ConstMatMap WidenRows(const TensorView& w, int64_t r0, int64_t n) {
  thread_local std::vector<float> scratch;
  const int64_t in = w.cols();
  if (scratch.size() < static_cast<size_t>(n * in)) scratch.resize(static_cast<size_t>(n * in));
  const size_t row_bytes = static_cast<size_t>(in) * DTypeSize(w.dtype);
  float* dst = scratch.data();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < n; ++r) ToFloat(w.dtype, w.data + (r0 + r) * row_bytes, dst + r * in, in);
  return ConstMatMap(dst, n, in);
}
}  // namespace

DenseLinear::DenseLinear(TensorView w, TensorView bias) : w_(std::move(w)), bias_(std::move(bias)) {
  Check(w_.shape.size() == 2, "DenseLinear: weight must be 2-D, got " + w_.ShapeString());
  Check(bias_.empty() || bias_.numel() == w_.rows(),
        "DenseLinear: bias " + bias_.ShapeString() + " does not match weight " + w_.ShapeString());
}

void EigenLinear(const Mat& x, const TensorView& w, Mat& y) {
  const int64_t out = w.rows(), in = w.cols();
  y.resize(x.rows(), out);
  if (w.dtype == DType::kF32) {
    ConstMatMap wf(reinterpret_cast<const float*>(w.data), out, in);
    ForEachBlock(out, [&](Eigen::Index r0, Eigen::Index n) {
      y.middleCols(r0, n).noalias() = x * wf.middleRows(r0, n).transpose();
    });
  } else {
    for (int64_t r0 = 0; r0 < out; r0 += kWidenRows) {
      const int64_t n = std::min(kWidenRows, out - r0);
      const auto wide = WidenRows(w, r0, n);
      ForEachBlock(n, [&](Eigen::Index c0, Eigen::Index m) {
        y.middleCols(r0 + c0, m).noalias() = x * wide.middleRows(c0, m).transpose();
      });
    }
  }
}

void DenseLinear::Apply(const Mat& x, Mat& y) const {
  Check(x.cols() == w_.cols(), [&] {
    return "DenseLinear: input has " + std::to_string(x.cols()) + " columns, weight expects " +
           std::to_string(w_.cols());
  });
  if constexpr (kHavePackedGemm) {
    PackedGemm(x, w_, y);
  } else {
    EigenLinear(x, w_, y);
  }
  if (!bias_.empty()) y.rowwise() += ToVec(bias_).transpose();
}

}  // namespace sq
