#include "model/linear.h"

#include "core/error.h"

namespace sq {

namespace {
// Output channels widened from F16/BF16 at a time: bounds the float copy of a large weight
// (an lm_head of 150k rows would otherwise need a 600 MB float copy per call).
constexpr int64_t kWidenRows = 4096;
}  // namespace

DenseLinear::DenseLinear(TensorView w, TensorView bias) : w_(std::move(w)), bias_(std::move(bias)) {
  Check(w_.shape.size() == 2, "DenseLinear: weight must be 2-D, got " + w_.ShapeString());
  Check(bias_.empty() || bias_.numel() == w_.rows(),
        "DenseLinear: bias " + bias_.ShapeString() + " does not match weight " + w_.ShapeString());
}

void DenseLinear::Apply(const Mat& x, Mat& y) const {
  const int64_t out = w_.rows(), in = w_.cols();
  Check(x.cols() == in, "DenseLinear: input has " + std::to_string(x.cols()) +
                            " columns, weight expects " + std::to_string(in));
  y.resize(x.rows(), out);
  if (w_.dtype == DType::kF32) {
    ConstMatMap w(reinterpret_cast<const float*>(w_.data), out, in);
    y.noalias() = x * w.transpose();
  } else {
    Mat chunk;
    const size_t row_bytes = static_cast<size_t>(in) * DTypeSize(w_.dtype);
    for (int64_t r0 = 0; r0 < out; r0 += kWidenRows) {
      const int64_t n = std::min(kWidenRows, out - r0);
      chunk.resize(n, in);
      ToFloat(w_.dtype, w_.data + r0 * row_bytes, chunk.data(), n * in);
      y.middleCols(r0, n).noalias() = x * chunk.transpose();
    }
  }
  if (!bias_.empty()) y.rowwise() += ToVec(bias_).transpose();
}

}  // namespace sq
