// The integer execution path of an ActQuantLinear over int4 QuantWeightLinear weights: the same
// quantized weights and activation quantization, computed with the integer W4A4 kernels of
// quant/integer_gemm.h instead of fake-quantized float. Built from that pair (weights packed
// once, at construction), so the quantizer's classes stay as they are; UseIntegerKernels swaps a
// whole model over.
#pragma once

#include "model/model.h"
#include "quant/integer_gemm.h"
#include "quant/quant_linear.h"

namespace sq {

class Int4IntegerLinear : public Linear {
 public:
  // True when `src` has int4 weights and 2..8-bit activation quantization (what the kernels run).
  static bool Supports(const ActQuantLinear& src);
  // Throws Error when !Supports(src). `kernel` kAuto picks the best for this CPU.
  explicit Int4IntegerLinear(const ActQuantLinear& src, Int4Kernel kernel = Int4Kernel::kAuto);

  void Apply(const Mat& x, Mat& y) const override;
  int in_features() const override { return packed_.cols; }
  int out_features() const override { return packed_.rows; }
  const PackedInt4& packed() const { return packed_; }
  Int4Kernel kernel() const { return kernel_; }

 private:
  PackedInt4 packed_;
  ActQuantSpec act_;
  Vec bias_;
  Int4Kernel kernel_;
};

// Replaces every supported W4A4 linear of `m` (also inside InputTransformLinear wrappers) by an
// Int4IntegerLinear; returns how many were replaced. Others (float, W4A16, int8) stay.
int UseIntegerKernels(Model& m, Int4Kernel kernel = Int4Kernel::kAuto);

}  // namespace sq
