// Hadamard rotation (QuaRot, Ashkboos et al. 2024) on norm-folded weights.
//
// Residual stream (models without GatedNorm): h -> h Q with one Q [d, d] for the whole stream.
//   embedding E <- E Q; readers (q, k, v, gate, up, lm_head) W <- W Q; writers (o, down)
//   W <- Q^T W. Exact because a weightless RMSNorm commutes with Q: n(h Q) = n(h) Q.
// With GatedNorm the norm output is multiplied elementwise by a data-dependent gate computed in
// the original basis; n(h Q) * g != (n(h) * g) Q, so the residual is NOT rotated. Instead the
// readers of every gated norm get an online rotation: they compute (out Q)(W Q)^T.
// down_proj input: online rotation Q_f [f, f] (W_down <- W_down Q_f), since silu(gate) * up is
//   elementwise and nothing before it can absorb Q_f.
// v -> o: without gated attention, a per-head rotation H [hd, hd] folds into v_proj's rows
//   (W_v <- H^T W_v per KV head) and o_proj's columns (per head); attention mixes tokens, not
//   dims, so softmax(q k^T) v H = (softmax(q k^T) v) H. With gated attention the output is
//   multiplied elementwise by sigmoid(gate) before o_proj, so it cannot pass: o_proj gets an
//   online rotation over its whole input [H*hd] instead.
// Rotations are Hadamard matrices with random signs where a construction exists (hadamard.h),
// else seeded random orthogonal matrices.
#pragma once

#include <cstdint>
#include <memory>

#include "quant/transformed_model.h"

namespace sq {

struct RotateOptions {
  uint64_t seed = 0;
  bool residual = true;  // rotate the residual stream (or, with GatedNorm, the gated norm outputs)
  bool down = true;      // online rotation of the down_proj input
  bool heads = true;     // v/o: per-head fold, or online o_proj rotation with gated attention
  // The residual stream's Q [hidden, hidden] (a learned rotation, quant/learn_rotation.h); null:
  // Rotation(hidden, seed). The online rotations are drawn from the seed either way.
  std::shared_ptr<const Rotation> residual_q = nullptr;
};

// The Rotation(n, seed), shared while anyone holds it: a model rotated one layer at a time
// (quant/recipe_pipeline.h) keeps one dense [n, n] matrix for all its layers, not one per layer.
std::shared_ptr<const Rotation> SharedRotation(int n, uint64_t seed);

// Throws Error unless every norm weight is exactly one (run FoldNorms first).
TransformedModel RotateHadamard(const TransformedModel& in, const RotateOptions& opt);

// The rotated KV cache (QuaRot): an online per-head rotation R [hd, hd] (seed + 4) of the
// queries and keys after RoPE, so a KV quantizer sees keys k R; exact since (q R).(k R) = q.k.
// RoPE depends on the position, so R cannot fold into W_q/W_k. Values: R folds into v_proj's
// rows per KV head, so the cache holds v R too; without gated attention R also folds into
// o_proj's columns as in RotateHadamard (no online cost; on a rotated model the values then carry
// both per-head rotations, still orthogonal). With gated attention the elementwise gate stops it
// before o_proj: every head of the attention output is rotated back online (x R^T) before the
// gate. Works on any model, rotated or not, norms folded or not; run it after RotateHadamard
// (which refuses online rotations).
TransformedModel RotateKvCache(const TransformedModel& in, uint64_t seed);

}  // namespace sq
