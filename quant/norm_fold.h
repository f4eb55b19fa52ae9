// Norm folding: every RMSNorm weight gamma moves into the linears that read the norm, so the
// norm becomes weightless (its weight is set to ones). Exact in float:
//   W (n(x) * gamma) = (W diag(gamma)) n(x).
// With GatedNorm (out = y * sigmoid(U silu(D y)), y = n(x) * gamma) gamma also folds into the
// gate's down projection, D' = D diag(gamma), so the gate sees the same pre-activation; the
// gate itself stays an explicit float op. The final norm folds into lm_head, which unties a
// tied embedding (config.tie_embeddings becomes false).
#pragma once

#include "quant/transformed_model.h"

namespace sq {

// Throws Error if `in` already has online rotations (fold before rotating).
TransformedModel FoldNorms(const TransformedModel& in);

}  // namespace sq
