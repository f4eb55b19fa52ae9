// Quantized linears, as two pieces that compose:
//   QuantWeightLinear  quantized weights (2..8 bits, int4 packed two per byte):
//                      y = x deq(W)^T (+ bias)
//   ActQuantLinear     per-token activation quantization in front of any linear:
//                      y = inner(fakequant(x)); in front of a QuantWeightLinear it multiplies
//                      the integer codes instead (exactly, in a float or double GEMM) and applies
//                      the scales in the integer kernels' order (quant/integer_gemm.h), so the
//                      integer path reproduces it bit for bit
// W4A4 is ActQuantLinear(QuantWeightLinear); W4A16 a bare QuantWeightLinear; W16A4 an
// ActQuantLinear around the float linear. Each computes the product ONNX Runtime's QDQ graph
// computes; with activation quantization off an ActQuantLinear is exactly its inner linear.
#pragma once

#include <functional>
#include <memory>

#include "model/linear.h"
#include "quant/quantizer.h"

namespace sq {

using LinearPtr = std::shared_ptr<const Linear>;

class QuantWeightLinear : public Linear {
 public:
  // `bias` [out] or empty (kept in float).
  explicit QuantWeightLinear(std::shared_ptr<const QuantizedWeight> w, Vec bias = {});

  void Apply(const Mat& x, Mat& y) const override;  // y = x deq(W)^T + b
  // y = (sa * codes) deq(W)^T + b, where codes [T, in] and sa [T] are `act`'s quantization of
  // the input (QuantizeActRows), computed on the integer codes.
  void ApplyToCodes(const Mat& codes, const Vec& sa, const ActQuantSpec& act, Mat& y) const;
  int in_features() const override { return w_->cols; }
  int out_features() const override { return w_->rows; }

  const std::shared_ptr<const QuantizedWeight>& weight() const { return w_; }
  const Vec& bias() const { return bias_; }

 private:
  std::shared_ptr<const QuantizedWeight> w_;
  Vec bias_;
};

class ActQuantLinear : public Linear {
 public:
  ActQuantLinear(LinearPtr inner, const ActQuantSpec& act);

  void Apply(const Mat& x, Mat& y) const override;
  int in_features() const override { return inner_->in_features(); }
  int out_features() const override { return inner_->out_features(); }

  // The linear after the quantization: the same weights with float activations.
  const LinearPtr& inner() const { return inner_; }
  const Linear* wrapped() const override { return inner_.get(); }
  const ActQuantSpec& act() const { return act_; }

 private:
  LinearPtr inner_;
  ActQuantSpec act_;
};

// A Linear behind an online input transform (e.g. a Hadamard rotation of the down_proj input):
// y = inner(Transform(x)), plus whatever a subclass adds beside `inner` (quant/outlier_channels.h
// adds its 8-bit side). Online transforms (quant/online_rotation.h) subclass it;
// QuantizeModel quantizes `inner`, collects GPTQ Hessians on Transform(x), and re-wraps the
// result with WithInner.
class InputTransformLinear : public Linear {
 public:
  virtual void TransformInput(const Mat& x, Mat& xt) const = 0;
  virtual const std::shared_ptr<const Linear>& inner() const = 0;
  virtual std::shared_ptr<const Linear> WithInner(std::shared_ptr<const Linear> inner) const = 0;

  void Apply(const Mat& x, Mat& y) const override {
    Mat xt;
    TransformInput(x, xt);
    inner()->Apply(xt, y);
  }
  int in_features() const override { return inner()->in_features(); }
  int out_features() const override { return inner()->out_features(); }
  const Linear* wrapped() const override { return inner().get(); }
};

// The one walk through online input transforms: every step that replaces or inspects "the
// linear" of a projection (quantizing it, its integer version, sink-aware rows) means the one
// inside its transforms, and keeps the transforms around what it puts there.
// The linear inside `lin`'s input transforms (`lin` itself when it has none).
const LinearPtr& InsideTransforms(const LinearPtr& lin);
// `lin` with the linear inside its transforms replaced by replace(that linear), re-wrapped in
// the same transforms; null when `replace` returns null (no replacement).
LinearPtr ReplaceInsideTransforms(const LinearPtr& lin,
                                  const std::function<LinearPtr(const LinearPtr&)>& replace);

// The float weight [out, in] and bias of the DenseLinear a wrapper chain ends in; throws Error
// for a chain that ends in anything else (quantized weights).
struct FloatWeight {
  Mat w;   // [out, in]
  Vec bias;  // [out] or empty
};
FloatWeight FloatWeightOf(const Linear& lin);

}  // namespace sq
