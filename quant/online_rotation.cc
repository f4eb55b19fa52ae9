#include "quant/online_rotation.h"

#include "core/error.h"

namespace sq {

OnlineRotation::OnlineRotation(std::shared_ptr<const Linear> inner,
                               std::shared_ptr<const Rotation> rotation)
    : inner_(std::move(inner)), rotation_(std::move(rotation)) {
  Check(inner_ && rotation_, "OnlineRotation: null linear or rotation");
  Check(rotation_->size() == inner_->in_features(),
        "OnlineRotation: rotation of size " + std::to_string(rotation_->size()) +
            " for a linear with " + std::to_string(inner_->in_features()) + " inputs");
}

void OnlineRotation::TransformInput(const Mat& x, Mat& xt) const {
  xt = x;  // [T, in]
  rotation_->Apply(xt);
}

std::shared_ptr<const Linear> OnlineRotation::WithInner(std::shared_ptr<const Linear> inner) const {
  return std::make_shared<OnlineRotation>(std::move(inner), rotation_);
}

namespace {

std::shared_ptr<const Rotation> RotationOf(const std::shared_ptr<const Linear>& lin) {
  const auto* r = dynamic_cast<const OnlineRotation*>(lin.get());
  return r ? r->rotation() : nullptr;
}

}  // namespace

OnlineRotations FindOnlineRotations(const Model& m) {
  OnlineRotations r;
  r.head_in = RotationOf(m.lm_head);
  for (const LayerLinears& lin : m.linears) {
    r.layers.push_back({RotationOf(lin.q), RotationOf(lin.o), RotationOf(lin.gate),
                        RotationOf(lin.down)});
  }
  if (r.empty()) r.layers.clear();
  return r;
}

bool OnlineRotations::empty() const {
  if (head_in) return false;
  for (const auto& l : layers) {
    if (l.attn_in || l.o_in || l.ffn_in || l.down_in) return false;
  }
  return true;
}

void WrapOnlineRotations(Model& m, const OnlineRotations& r) {
  auto wrap = [](std::shared_ptr<const Linear>& lin, const std::shared_ptr<const Rotation>& q) {
    if (q) lin = std::make_shared<OnlineRotation>(lin, q);
  };
  Check(r.layers.empty() || r.layers.size() == m.linears.size(),
        "WrapOnlineRotations: " + std::to_string(r.layers.size()) + " layers of rotations for a " +
            std::to_string(m.linears.size()) + "-layer model");
  for (size_t l = 0; l < r.layers.size(); ++l) {
    LayerLinears& lin = m.linears[l];
    const LayerOnlineRotations& q = r.layers[l];
    wrap(lin.q, q.attn_in);
    wrap(lin.k, q.attn_in);
    wrap(lin.v, q.attn_in);
    wrap(lin.o, q.o_in);
    wrap(lin.gate, q.ffn_in);
    wrap(lin.up, q.ffn_in);
    wrap(lin.down, q.down_in);
  }
  wrap(m.lm_head, r.head_in);
}

const Rotation* RotationAtSite(const OnlineRotations& r, Site site, int layer) {
  if (site == Site::kHeadInput) return r.head_in.get();
  if (layer < 0 || layer >= static_cast<int>(r.layers.size())) return nullptr;
  const LayerOnlineRotations& q = r.layers[layer];
  switch (site) {
    case Site::kAttnInput: return q.attn_in.get();
    case Site::kOInput: return q.o_in.get();
    case Site::kFfnInput: return q.ffn_in.get();
    case Site::kDownInput: return q.down_in.get();
    default: return nullptr;
  }
}

const Rotation* RotationAtSite(const Model& m, Site site, int layer) {
  auto of = [](const std::shared_ptr<const Linear>& lin) {
    const auto* r = dynamic_cast<const OnlineRotation*>(lin.get());
    return r ? r->rotation().get() : nullptr;
  };
  if (site == Site::kHeadInput) return of(m.lm_head);
  if (layer < 0 || layer >= static_cast<int>(m.linears.size())) return nullptr;
  const LayerLinears& lin = m.linears[layer];
  switch (site) {
    case Site::kAttnInput: return of(lin.q);
    case Site::kOInput: return of(lin.o);
    case Site::kFfnInput: return of(lin.gate);
    case Site::kDownInput: return of(lin.down);
    default: return nullptr;
  }
}

}  // namespace sq
