// Int4Linear: a Linear with quantized weights (int4 packed two per byte, or int8) that
// fake-quantizes its input per token, then computes y = deq(x) deq(W)^T (+ bias): the product
// ONNX Runtime's QDQ graph computes. With activations quantized too, it multiplies the integer
// codes (exactly, in a float or double GEMM) and applies the scales in the integer kernels'
// order (quant/int4_gemm.h), so the integer path reproduces it bit for bit; the packed codes,
// scales and zero points are public.
//
// With float weights (w_bits 16) it wraps the original Linear and only quantizes activations;
// with activation quantization off that path is exactly the float Linear (bit for bit).
#pragma once

#include <memory>

#include "model/linear.h"
#include "quant/quantizer.h"

namespace sq {

class Int4Linear : public Linear {
 public:
  // Quantized weights; `bias` [out] or empty (kept in float).
  Int4Linear(std::shared_ptr<const QuantizedWeight> w, const ActQuantSpec& act, Vec bias = {});
  // Float weights: `dense` computes the product after the activation fake-quant.
  Int4Linear(std::shared_ptr<const Linear> dense, const ActQuantSpec& act);

  void Apply(const Mat& x, Mat& y) const override;
  int in_features() const override;
  int out_features() const override;

  // Null when the weights are float (then `float_linear()` is set).
  const std::shared_ptr<const QuantizedWeight>& weight() const { return w_; }
  const std::shared_ptr<const Linear>& float_linear() const { return dense_; }
  const ActQuantSpec& act() const { return act_; }
  const Vec& bias() const { return bias_; }

 private:
  std::shared_ptr<const QuantizedWeight> w_;
  std::shared_ptr<const Linear> dense_;
  ActQuantSpec act_;
  Vec bias_;
};

// A Linear behind an online input transform (e.g. a Hadamard rotation of the down_proj input):
// y = inner(Transform(x)). Online transforms (quant/online_rotation.h) subclass it;
// QuantizeModel quantizes `inner`, collects GPTQ Hessians on Transform(x), and re-wraps the
// result with WithInner.
class InputTransformLinear : public Linear {
 public:
  virtual void TransformInput(const Mat& x, Mat& xt) const = 0;
  virtual const std::shared_ptr<const Linear>& inner() const = 0;
  virtual std::shared_ptr<const Linear> WithInner(std::shared_ptr<const Linear> inner) const = 0;

  void Apply(const Mat& x, Mat& y) const final {
    Mat xt;
    TransformInput(x, xt);
    inner()->Apply(xt, y);
  }
  int in_features() const override { return inner()->in_features(); }
  int out_features() const override { return inner()->out_features(); }
};

// The float weight [out, in] and bias of a DenseLinear, or of an Int4Linear with float weights
// (looking through InputTransformLinear wrappers); throws Error for anything else.
struct FloatWeight {
  Mat w;   // [out, in]
  Vec bias;  // [out] or empty
};
FloatWeight FloatWeightOf(const Linear& lin);

}  // namespace sq
