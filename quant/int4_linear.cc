#include "quant/int4_linear.h"

#include <algorithm>

#include "core/error.h"

namespace sq {

namespace {
// Output channels dequantized at a time: bounds the float copy of a large weight.
constexpr int kDequantRows = 2048;
}  // namespace

Int4Linear::Int4Linear(std::shared_ptr<const QuantizedWeight> w, const ActQuantSpec& act, Vec bias)
    : w_(std::move(w)), act_(act), bias_(std::move(bias)) {
  Check(w_ != nullptr, "Int4Linear: null weight");
  Check(bias_.size() == 0 || bias_.size() == w_->rows,
        "Int4Linear: bias of " + std::to_string(bias_.size()) + " for " +
            std::to_string(w_->rows) + " output channels");
}

Int4Linear::Int4Linear(std::shared_ptr<const Linear> dense, const ActQuantSpec& act)
    : dense_(std::move(dense)), act_(act) {
  Check(dense_ != nullptr, "Int4Linear: null float linear");
}

int Int4Linear::in_features() const { return w_ ? w_->cols : dense_->in_features(); }
int Int4Linear::out_features() const { return w_ ? w_->rows : dense_->out_features(); }

void Int4Linear::Apply(const Mat& x, Mat& y) const {
  Check(x.cols() == in_features(), "Int4Linear: input has " + std::to_string(x.cols()) +
                                       " columns, weight expects " +
                                       std::to_string(in_features()));
  Mat xq_storage;
  const Mat* xq = &x;
  if (act_.enabled()) {
    xq_storage = x;
    FakeQuantRows(xq_storage, act_);
    xq = &xq_storage;
  }
  if (dense_) {
    dense_->Apply(*xq, y);
    return;
  }
  y.resize(x.rows(), w_->rows);
  Mat chunk;  // [n, in]
  for (int r0 = 0; r0 < w_->rows; r0 += kDequantRows) {
    const int n = std::min(kDequantRows, w_->rows - r0);
    w_->DequantizeRows(r0, n, chunk);
    y.middleCols(r0, n).noalias() = *xq * chunk.transpose();
  }
  if (bias_.size() > 0) y.rowwise() += bias_.transpose();
}

FloatWeight FloatWeightOf(const Linear& lin) {
  if (const auto* d = dynamic_cast<const DenseLinear*>(&lin)) {
    FloatWeight f{ToMat(d->weight()), {}};
    if (!d->bias().empty()) f.bias = ToVec(d->bias());
    return f;
  }
  if (const auto* q = dynamic_cast<const Int4Linear*>(&lin); q && q->float_linear()) {
    return FloatWeightOf(*q->float_linear());
  }
  if (const auto* t = dynamic_cast<const InputTransformLinear*>(&lin)) {
    return FloatWeightOf(*t->inner());
  }
  throw Error("quantization needs a float Linear (DenseLinear), got an already quantized or "
              "unknown Linear implementation");
}

}  // namespace sq
