// Per-linear activation clip search (the +act-clip recipe modifier). A linear's input is
// quantized per token with scale clip * absmax / qmax (quant/quantizer.h); QuaRot fixes one clip
// (0.9) for every linear. The search picks, for each quantized linear, the ratio from a grid that
// minimises the linear's output error on the calibration inputs it sees:
//   err(c) = sum over windows ||A_c(x) W_q^T - x W^T||^2
// with A_c the activation fake-quant at clip c, W_q the (already quantized) weights and W the
// float weights of the transformed model. The chosen ratio is the ActQuantSpec::clip of that
// linear's ActQuantLinear, so the fake-quant path, the integer kernels and both ONNX formats
// use it.
#pragma once

#include <vector>

#include "core/tensor.h"
#include "quant/quant_linear.h"

namespace sq {

// The ratios +act-clip tries: 1.00, 0.95, ... down to `min_ratio` (kept when it is on the grid
// within float rounding; the smallest ratio tried is >= min_ratio - 1e-4).
std::vector<float> ActClipGrid(float min_ratio);

// err(c) for every ratio of `grid`, in double: `ref` is the float linear (x W^T + b), `quantized`
// the linear with quantized weights (or the float one for W16 activations), `act` the activation
// quantizer (its clip is replaced by each ratio). `xs` are the linear's inputs, window by window;
// errors are added window after window into `errors` (which must have grid.size() entries), so a
// caller can continue a sum across MPI ranks in window order. `ref_inputs` (may be null; +seq):
// the targets are ref(ref_inputs[w]) instead of ref(xs[w]) (the float model's inputs).
void AddActClipErrors(const std::vector<Mat>& xs, const Linear& ref, const LinearPtr& quantized,
                      const ActQuantSpec& act, const std::vector<float>& grid,
                      std::vector<double>& errors, const std::vector<Mat>* ref_inputs = nullptr);

// The index of the smallest error (ties keep the earlier, larger ratio).
size_t BestActClip(const std::vector<double>& errors);

}  // namespace sq
