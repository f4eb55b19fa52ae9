// Rotations that cannot be folded into weights and run inside the forward pass instead:
// a Linear wrapper y = inner(x Q), where the inner linear holds W Q. Because the inner linear
// sees x Q, an int4 inner linear quantizes the rotated activation (that is the point).
// It is an InputTransformLinear, so QuantizeModel quantizes the inner linear, collects GPTQ
// Hessians on x Q and keeps the rotation around the quantized result.
#pragma once

#include <memory>
#include <vector>

#include "model/model.h"
#include "quant/hadamard.h"
#include "quant/quant_linear.h"

namespace sq {

class OnlineRotation : public InputTransformLinear {
 public:
  OnlineRotation(std::shared_ptr<const Linear> inner, std::shared_ptr<const Rotation> rotation);
  void TransformInput(const Mat& x, Mat& xt) const override;  // xt = x Q
  const std::shared_ptr<const Linear>& inner() const override { return inner_; }
  std::shared_ptr<const Linear> WithInner(std::shared_ptr<const Linear> inner) const override;
  const std::shared_ptr<const Rotation>& rotation() const { return rotation_; }

 private:
  std::shared_ptr<const Linear> inner_;
  std::shared_ptr<const Rotation> rotation_;
};

// Which linear inputs a transformed model rotates at run time; null = none. q/k/v share the
// attention input, gate/up the FFN input.
struct LayerOnlineRotations {
  std::shared_ptr<const Rotation> attn_in;  // input of q/k/v   [T, d]
  std::shared_ptr<const Rotation> o_in;     // input of o_proj  [T, H*hd]
  std::shared_ptr<const Rotation> ffn_in;   // input of gate/up [T, d]
  std::shared_ptr<const Rotation> down_in;  // input of down    [T, f]
  // Not linear inputs (kv-rotate): every head of the queries and keys after RoPE [hd], and the
  // inverse on every head of the attention output (gated attention, values rotated in W_v).
  std::shared_ptr<const Rotation> qk, attn_out;
  // Gemma's post-norm outputs [d] (residual rotation with post-norms): not a linear input either.
  std::shared_ptr<const Rotation> post_out;
  // The field of a layer's linear-input site; throws Error for any other site.
  std::shared_ptr<const Rotation>& At(Site site);
  const std::shared_ptr<const Rotation>& At(Site site) const;
};
struct OnlineRotations {
  std::vector<LayerOnlineRotations> layers;  // empty, or one per layer
  std::shared_ptr<const Rotation> head_in;   // input of lm_head [T, d]
  bool empty() const;
};

// The rotations wrapped around `m`'s linears (the inverse of WrapOnlineRotations): lets a
// transform applied to a built Model know what is already rotated online.
OnlineRotations FindOnlineRotations(const Model& m);

// Wraps the linears of `m` whose input `r` rotates (m's linears must already hold W Q) and sets
// each layer's head rotations (LayerLinears::qk, attn_out).
void WrapOnlineRotations(Model& m, const OnlineRotations& r);

// The rotation applied to the input of the linear(s) at an observer site, or null. Lets
// statistics gathered at the site describe what the linear actually sees.
const Rotation* RotationAtSite(const OnlineRotations& r, Site site, int layer);
// The same read from `m`'s linears as they are now (a layer-at-a-time model has only the
// current layer's).
const Rotation* RotationAtSite(const Model& m, Site site, int layer);

}  // namespace sq
