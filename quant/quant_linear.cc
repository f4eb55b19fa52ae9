#include "quant/quant_linear.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/parallel_blocks.h"

namespace sq {

namespace {
// Output channels dequantized at a time: bounds the float copy of a large weight.
constexpr int kDequantRows = 2048;

// True when no partial sum of one group's code products can pass 2^24, so a float GEMM of
// the codes sums them exactly in any order.
bool FloatSumsExact(const QuantizedWeight& w, const ActQuantSpec& a) {
  const double act = std::ldexp(1.0, a.bits - 1);
  const double wt = w.grid.sym ? std::ldexp(1.0, w.grid.bits - 1) : std::ldexp(1.0, w.grid.bits) - 1;
  return act * wt * w.group <= std::ldexp(1.0, 24);
}

// y = sa[t] * sum_g sw[n, g] * (qa[t, g] . qw[n, g]), each group's dot product of integer codes
// summed exactly by an Eigen GEMM in `Real`, the groups combined in the integer kernels' fixed
// order (quant/integer_gemm.h): acc = fma(dot_g, sw[n, g], acc) for g = 0, 1, ...; y = acc * sa.
// So the fake-quant path and the integer kernels give the same floats, not merely close ones:
// summing deq(x) deq(W) in float instead would round differently, and one flipped 4-bit
// rounding downstream moves a W4A4 perplexity far more than float rounding does.
template <typename Real>
void CodeProduct(const Mat& codes, const Vec& sa, const QuantizedWeight& w, Mat& y) {
  using RealMat = Eigen::Matrix<Real, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const RealMat qa = codes.cast<Real>();  // [T, K]
  const Eigen::Index T = codes.rows();
  y.setZero(T, w.rows);  // the accumulator
  Mat qw;                // [n, group columns]
  RealMat dot;           // [T, n]
  for (int r0 = 0; r0 < w.rows; r0 += kDequantRows) {
    const int n = std::min(kDequantRows, w.rows - r0);
    for (int g = 0; g < w.n_groups(); ++g) {
      w.CentredCodes(r0, n, g, qw);
      dot.resize(T, n);
      const auto a = qa.middleCols(Eigen::Index{g} * w.group, qw.cols());
      ForEachBlock(n, [&](Eigen::Index c0, Eigen::Index m) {
        dot.middleCols(c0, m).noalias() = a * qw.middleRows(c0, m).cast<Real>().transpose();
      });
      const Vec sw = w.scales.block(r0, g, n, 1);
#pragma omp parallel for schedule(static)
      for (Eigen::Index t = 0; t < T; ++t) {
        float* acc = &y(t, r0);
        for (int j = 0; j < n; ++j) acc[j] = std::fma(static_cast<float>(dot(t, j)), sw[j], acc[j]);
      }
    }
  }
  y.array().colwise() *= sa.array();
}
}  // namespace

QuantWeightLinear::QuantWeightLinear(std::shared_ptr<const QuantizedWeight> w, Vec bias)
    : w_(std::move(w)), bias_(std::move(bias)) {
  Check(w_ != nullptr, "QuantWeightLinear: null weight");
  Check(bias_.size() == 0 || bias_.size() == w_->rows,
        "QuantWeightLinear: bias of " + std::to_string(bias_.size()) + " for " +
            std::to_string(w_->rows) + " output channels");
}

void QuantWeightLinear::Apply(const Mat& x, Mat& y) const {
  Check(x.cols() == in_features(), [&] {
    return "QuantWeightLinear: input has " + std::to_string(x.cols()) +
           " columns, weight expects " + std::to_string(in_features());
  });
  y.resize(x.rows(), w_->rows);
  Mat chunk;  // [n, in]
  for (int r0 = 0; r0 < w_->rows; r0 += kDequantRows) {
    const int n = std::min(kDequantRows, w_->rows - r0);
    w_->DequantizeRows(r0, n, chunk);
    ForEachBlock(n, [&](Eigen::Index c0, Eigen::Index m) {
      y.middleCols(r0 + c0, m).noalias() = x * chunk.middleRows(c0, m).transpose();
    });
  }
  if (bias_.size() > 0) y.rowwise() += bias_.transpose();
}

void QuantWeightLinear::ApplyToCodes(const Mat& codes, const Vec& sa, const ActQuantSpec& act,
                                     Mat& y) const {
  if (FloatSumsExact(*w_, act)) {
    CodeProduct<float>(codes, sa, *w_, y);
  } else {
    CodeProduct<double>(codes, sa, *w_, y);
  }
  if (bias_.size() > 0) y.rowwise() += bias_.transpose();
}

ActQuantLinear::ActQuantLinear(LinearPtr inner, const ActQuantSpec& act)
    : inner_(std::move(inner)), act_(act) {
  Check(inner_ != nullptr, "ActQuantLinear: null linear");
}

void ActQuantLinear::Apply(const Mat& x, Mat& y) const {
  Check(x.cols() == in_features(), [&] {
    return "ActQuantLinear: input has " + std::to_string(x.cols()) +
           " columns, weight expects " + std::to_string(in_features());
  });
  if (!act_.enabled()) return inner_->Apply(x, y);
  if (const auto* q = dynamic_cast<const QuantWeightLinear*>(inner_.get())) {
    Mat codes;  // both sides quantized: multiply the codes
    Vec sa;
    QuantizeActRows(x, act_, &codes, &sa);
    return q->ApplyToCodes(codes, sa, act_, y);
  }
  Mat xq = x;
  FakeQuantRows(xq, act_);
  inner_->Apply(xq, y);
}

const LinearPtr& InsideTransforms(const LinearPtr& lin) {
  const auto* t = dynamic_cast<const InputTransformLinear*>(lin.get());
  return t ? InsideTransforms(t->inner()) : lin;
}

LinearPtr ReplaceInsideTransforms(const LinearPtr& lin,
                                  const std::function<LinearPtr(const LinearPtr&)>& replace) {
  const auto* t = dynamic_cast<const InputTransformLinear*>(lin.get());
  if (!t) return replace(lin);
  LinearPtr inner = ReplaceInsideTransforms(t->inner(), replace);
  return inner ? t->WithInner(std::move(inner)) : nullptr;
}

FloatWeight FloatWeightOf(const Linear& lin) {
  if (const auto* d = FindWrapped<DenseLinear>(lin)) {
    FloatWeight f{ToMat(d->weight()), {}};
    if (!d->bias().empty()) f.bias = ToVec(d->bias());
    return f;
  }
  throw Error("quantization needs a float Linear (DenseLinear), got an already quantized or "
              "unknown Linear implementation");
}

}  // namespace sq
