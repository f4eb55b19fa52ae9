// bf16 products on Intel AMX tiles (Sapphire Rapids and later): y = bf16(x) W^T for weights
// stored as bf16, the inputs rounded to bf16 (round to nearest even) and their exact products
// summed in float by the tile unit. The tile unit does ~14x the FP32 FMA rate of a core, so this
// is how a bf16 checkpoint's forward runs well past ONNX Runtime's FP32 MLAS on the same CPU.
// It is opt-in (`--matmul-precision bf16`, core/gemm.h) because x loses its low 16 bits.
// Compiled into every x86-64 build (target attributes); used where the CPU has AMX-BF16 and
// Linux grants this process the tile state (core/amx.h). Like vdpbf16ps, the tile unit treats
// denormal inputs and results as zero.
#pragma once

#include "core/tensor.h"

namespace sq {

// Whether this build has the kernel and the OS lets this process use the tiles (asked once).
bool AmxBf16Available();

// y [M, N] = bf16(x) [M, K] * W^T for w [N, K] of dtype BF16; y is resized. Each output is one
// float chain over K in 1024-deep blocks, in an order fixed by K alone: the result depends on
// neither M, N nor the thread count. Throws when !AmxBf16Available() or w is not BF16.
void AmxBf16Gemm(const Mat& x, const TensorView& w, Mat& y);

}  // namespace sq
