// SmoothQuant (Xiao et al. 2023): per input channel j of a linear,
//   s_j = max|X_j|^alpha / max|W[:, j]|^(1 - alpha),
// X <- X / s folded into whatever produces X, W[:, j] <- W[:, j] * s_j. Exact in float for:
// - norm -> q/k/v and norm -> gate/up: 1/s into the norm weight. With GatedNorm 1/s goes into
//   gamma and s into the gate's down projection too (D' = D diag(s)): the gate's input is
//   unchanged, and a diagonal scale commutes with the elementwise gate.
// - v_proj -> o_proj: 1/s into v_proj's rows (and bias), s into o_proj's columns. With GQA the
//   query heads of a group read the same value head, so one s per (KV head, dim) serves every
//   head of the group (taken as the max over the group); a gated attention output
//   (attn * sigmoid(gate)) is elementwise, so the scale passes through it.
// - up_proj -> down_proj: silu(gate) * up is linear in up, so 1/s into up's rows.
// gate_proj -> down_proj is not exact (silu is not homogeneous) and is not done.
#pragma once

#include <vector>

#include "calib/dataset.h"
#include "quant/transformed_model.h"

namespace sq {

// Per-channel max |x| at the linear inputs, one vector per layer, over calibration windows.
struct ChannelAbsMax {
  std::vector<Vec> attn_in;  // [d]     input of q/k/v
  std::vector<Vec> o_in;     // [H*hd]  input of o_proj
  std::vector<Vec> ffn_in;   // [d]     input of gate/up
  std::vector<Vec> down_in;  // [f]     input of down_proj
};

// Runs `m` over `windows` and records the per-channel maxima (observer sites, so the values are
// what the float model's linears read before any online rotation).
ChannelAbsMax CollectChannelAbsMax(const Model& m, const std::vector<Window>& windows);

// The maxima of layer `l` alone, as a one-layer ChannelAbsMax, from `states` (the hidden states
// entering layer l, advanced through it in place): the layer pipeline's per-layer statistics.
ChannelAbsMax LayerChannelAbsMax(const Model& m, int l, std::vector<Mat>& states);

struct SmoothOptions {
  float alpha = 0.5f;
  bool attn = true;  // norm -> q/k/v
  bool ffn = true;   // norm -> gate/up
  bool vo = true;    // v_proj -> o_proj
  bool ud = true;    // up_proj -> down_proj
};

// The smoothing scales s_j for activation maxima `act` and weight column maxima `wmax`
// (both clamped at 1e-5 so dead channels keep s finite).
Vec SmoothScales(const Vec& act, const Vec& wmax, float alpha);

// `stats` must come from the model `in` describes. Throws Error if `in` has online rotations
// (smooth before rotating) or if the statistics do not match the model's shapes.
TransformedModel SmoothQuant(const TransformedModel& in, const ChannelAbsMax& stats,
                             const SmoothOptions& opt);

}  // namespace sq
