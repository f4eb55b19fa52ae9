#include "quant/online_rotation.h"

#include "core/error.h"
#include "model/proj.h"

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

std::shared_ptr<const Rotation>& LayerOnlineRotations::At(Site site) {
  switch (site) {
    case Site::kAttnInput: return attn_in;
    case Site::kOInput: return o_in;
    case Site::kFfnInput: return ffn_in;
    case Site::kDownInput: return down_in;
    default: throw Error(std::string("no layer rotation at site ") + SiteName(site));
  }
}

const std::shared_ptr<const Rotation>& LayerOnlineRotations::At(Site site) const {
  return const_cast<LayerOnlineRotations*>(this)->At(site);
}

// Linears reading one site share its rotation: the first reader tells.
OnlineRotations FindOnlineRotations(const Model& m) {
  OnlineRotations r;
  r.head_in = RotationOf(m.lm_head);
  r.layers.resize(m.linears.size());
  for (size_t l = 0; l < m.linears.size(); ++l) {
    for (Site site : kLayerInputSites) {
      r.layers[l].At(site) = RotationOf(LinearAt(m, l, ProjsReading(site).front()));
    }
    r.layers[l].qk = std::dynamic_pointer_cast<const Rotation>(m.linears[l].qk);
    r.layers[l].attn_out = std::dynamic_pointer_cast<const Rotation>(m.linears[l].attn_out);
    r.layers[l].post_out = std::dynamic_pointer_cast<const Rotation>(m.linears[l].post_out);
  }
  if (r.empty()) r.layers.clear();
  return r;
}

bool OnlineRotations::empty() const {
  if (head_in) return false;
  for (const auto& l : layers) {
    if (l.attn_in || l.o_in || l.ffn_in || l.down_in || l.qk || l.attn_out || l.post_out) {
      return false;
    }
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
    for (Site site : kLayerInputSites) {
      for (Proj p : ProjsReading(site)) wrap(LinearAt(m, l, p), r.layers[l].At(site));
    }
    m.linears[l].qk = r.layers[l].qk;
    m.linears[l].attn_out = r.layers[l].attn_out;
    m.linears[l].post_out = r.layers[l].post_out;
  }
  wrap(m.lm_head, r.head_in);
}

const Rotation* RotationAtSite(const OnlineRotations& r, Site site, int layer) {
  if (site == Site::kHeadInput) return r.head_in.get();
  if (layer < 0 || layer >= static_cast<int>(r.layers.size()) || !IsLayerLinearInput(site)) {
    return nullptr;
  }
  return r.layers[layer].At(site).get();
}

const Rotation* RotationAtSite(const Model& m, Site site, int layer) {
  if (site == Site::kHeadInput) return RotationOf(m.lm_head).get();
  if (layer < 0 || layer >= static_cast<int>(m.linears.size()) || !IsLayerLinearInput(site)) {
    return nullptr;
  }
  return RotationOf(LinearAt(m, layer, ProjsReading(site).front())).get();
}

}  // namespace sq
