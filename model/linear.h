// Linear: the one place where a layer's weights meet its input. The engine only calls Apply;
// dense float today, int4 (quant/) tomorrow, wrapped by online rotations when a recipe says so.
#pragma once

#include <memory>

#include "core/tensor.h"

namespace sq {

class Linear {
 public:
  virtual ~Linear() = default;
  // x [T, in] -> y [T, out] = x W^T (+ bias). `y` is resized by the callee.
  virtual void Apply(const Mat& x, Mat& y) const = 0;
  virtual int in_features() const = 0;
  virtual int out_features() const = 0;
  // The linear this one decorates (an online input transform, activation quantization), or
  // null for one that holds its weights itself: a chain of wrappers ends in the weights.
  virtual const Linear* wrapped() const { return nullptr; }
};

// The first linear in `lin`'s wrapper chain (`lin` itself first) that is a T, or null.
template <typename T>
const T* FindWrapped(const Linear& lin) {
  for (const Linear* l = &lin; l != nullptr; l = l->wrapped()) {
    if (const auto* t = dynamic_cast<const T*>(l)) return t;
  }
  return nullptr;
}

// y = x W^T + b with W kept in its stored dtype; F16/BF16 are widened per call, so a bf16
// model never holds an f32 copy of all its weights at once. The product is core/gemm.h's packed
// GEMM (widening while packing) where the build has its kernel, EigenLinear otherwise.
class DenseLinear : public Linear {
 public:
  // w [out, in] (F32/F16/BF16); bias [out] or empty. The views must outlive this object.
  DenseLinear(TensorView w, TensorView bias = {});
  void Apply(const Mat& x, Mat& y) const override;
  int in_features() const override { return static_cast<int>(w_.cols()); }
  int out_features() const override { return static_cast<int>(w_.rows()); }
  const TensorView& weight() const { return w_; }
  const TensorView& bias() const { return bias_; }

 private:
  TensorView w_;
  TensorView bias_;
};

// y = x W^T through Eigen, F16/BF16 weights widened a block of rows at a time: the portable
// build's product, and the reference the packed GEMM is tested against.
void EigenLinear(const Mat& x, const TensorView& w, Mat& y);

// An orthogonal map Q on every head of the queries and keys after RoPE, before the KV cache
// (QuaRot's online key rotation): (q Q).(k Q) = q.k, so attention is unchanged in float, but the
// KV quantizer sees rotated keys. Also undoes a rotation of the values on the attention output
// (LayerLinears::attn_out). Implemented in quant/; the engine only calls it.
class HeadRotation {
 public:
  virtual ~HeadRotation() = default;
  virtual int size() const = 0;                               // head_dim
  virtual void Apply(Eigen::Ref<Mat> x) const = 0;            // every row of x [rows, hd] -> x Q
  virtual void ApplyTransposed(Eigen::Ref<Mat> x) const = 0;  // -> x Q^T, the inverse
};

// Optional fake quantisation of one head's keys or values after RoPE (KV-cache quantisation).
// Implemented in quant/; the engine only calls it.
class KvQuantizer {
 public:
  virtual ~KvQuantizer() = default;
  virtual void Apply(Mat& x) const = 0;  // x [T, hd], in place
};

}  // namespace sq
