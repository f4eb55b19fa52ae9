// A packed float GEMM for the forward pass's linears: y = x W^T with W [N, K] row-major in its
// stored dtype (F32, F16 or BF16), widened to float while it is packed, so no float copy of a
// whole weight is ever made. BLIS-style cache blocking around an AVX2+FMA or AVX-512 register tile;
// a product of 1-3 rows (decoding) takes dot products with W's rows in place instead.
// Builds without AVX2/FMA/F16C (the portable x86-64-v2 one) have no kernel: kHavePackedGemm is
// false there and callers use Eigen instead.
#pragma once

#include "core/tensor.h"

namespace sq {

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
inline constexpr bool kHavePackedGemm = true;
#else
inline constexpr bool kHavePackedGemm = false;
#endif

// y [M, N] = x [M, K] * W^T for w [N, K] (F32, F16 or BF16); y is resized. Each output is summed
// over K in one fixed order for a given M, whatever the thread count, so results do not depend
// on it (they do on M, as Eigen's did: its one-row product was another kernel too). Output
// channels are split across the OpenMP threads. Throws when !kHavePackedGemm.
void PackedGemm(const Mat& x, const TensorView& w, Mat& y);

// What a product with bf16-stored weights computes. kF32 (the default): x as it is, exact
// against the reference tests. kBf16 (`--matmul-precision bf16`, as PyTorch's "medium"
// float32_matmul_precision): x rounded to bf16 first, so every product is exact and only the
// float sums round; on AMX CPUs (core/gemm_amx.h) such products of 4+ rows run on the tile unit,
// elsewhere on the float kernel. Weights stored as F32 or F16 are never rounded.
enum class MatmulPrecision { kF32, kBf16 };
void SetMatmulPrecision(MatmulPrecision p);
MatmulPrecision GetMatmulPrecision();
// "f32", "bf16 (AMX tiles)" or "bf16 (float kernel)": what PackedGemm runs for bf16-stored
// weights and 4+ rows (1-3 rows always take the float kernel; other dtypes are not rounded).
const char* MatmulPrecisionName();

}  // namespace sq
