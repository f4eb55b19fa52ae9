#include "quant/smooth.h"

#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "model/layer_major.h"
#include "model/proj.h"

namespace sq {

namespace {

class AbsMaxObserver : public ForwardObserver {
 public:
  explicit AbsMaxObserver(const ModelConfig& c) {
    const int L = c.n_layers;
    s_.attn_in.assign(L, Vec::Zero(c.hidden));
    s_.ffn_in.assign(L, Vec::Zero(c.hidden));
    s_.o_in.assign(L, Vec::Zero(c.q_dim()));
    s_.down_in.assign(L, Vec::Zero(c.intermediate));
  }
  bool Wants(Site site, int) const override { return IsLayerLinearInput(site); }
  void Observe(const Where& at, const Mat& x) override {
    RaiseChannelAbsMax(Slot(at.site)[at.layer], x);
  }
  ChannelAbsMax Take() { return std::move(s_); }

 private:
  std::vector<Vec>& Slot(Site site) {
    switch (site) {
      case Site::kAttnInput: return s_.attn_in;
      case Site::kOInput: return s_.o_in;
      case Site::kFfnInput: return s_.ffn_in;
      default: return s_.down_in;
    }
  }
  ChannelAbsMax s_;
};

// max over rows of |W[:, j]| across several weights with the same input: [in].
Vec ColumnAbsMax(std::initializer_list<const TensorView*> ws) {
  Vec m;
  for (const TensorView* w : ws) {
    const Vec c = ToMat(*w).cwiseAbs().colwise().maxCoeff().transpose();
    m = m.size() ? Vec(m.cwiseMax(c)) : c;
  }
  return m;
}

// 1/s into a norm (and its GatedNorm gate's down projection gets s), s into its readers.
void SmoothNorm(ModelWeights& w, TensorView& norm, NormGate& gate, const Vec& s,
                std::initializer_list<TensorView*> readers) {
  Replace(w, norm, ToVec(norm).cwiseQuotient(s));
  if (gate.present()) Replace(w, gate.down, ScaleColumns(gate.down, s));
  for (TensorView* r : readers) Replace(w, *r, ScaleColumns(*r, s));
}

void CheckSize(const Vec& v, int n, const char* what, int layer) {
  Check(v.size() == n, std::string("smooth: statistics for ") + what + " of layer " +
                           std::to_string(layer) + " have " + std::to_string(v.size()) +
                           " channels, the model has " + std::to_string(n));
}

// v_proj -> o_proj for one layer: one scale per (KV head, dim), shared by the group's heads.
void SmoothVo(const ModelConfig& c, ModelWeights& w, LayerWeights& L, const Vec& o_act,
              float alpha) {
  const int H = c.n_heads, hd = c.head_dim, g_size = c.heads_per_kv();
  const Vec o_wmax = ColumnAbsMax({&L.wo});  // [H*hd]
  Vec act = Vec::Zero(c.kv_dim()), wmax = Vec::Zero(c.kv_dim());
  for (int h = 0; h < H; ++h) {
    const int g = h / g_size;
    act.segment(g * hd, hd) = act.segment(g * hd, hd).cwiseMax(o_act.segment(h * hd, hd));
    wmax.segment(g * hd, hd) = wmax.segment(g * hd, hd).cwiseMax(o_wmax.segment(h * hd, hd));
  }
  const Vec s = SmoothScales(act, wmax, alpha);  // [Hkv*hd]
  Vec s_o(H * hd);
  for (int h = 0; h < H; ++h) s_o.segment(h * hd, hd) = s.segment((h / g_size) * hd, hd);
  const Vec inv = s.cwiseInverse();
  Replace(w, L.wv, ScaleRows(L.wv, inv));
  if (!L.bv.empty()) Replace(w, L.bv, ToVec(L.bv).cwiseProduct(inv));
  Replace(w, L.wo, ScaleColumns(L.wo, s_o));
}

}  // namespace

ChannelAbsMax CollectChannelAbsMax(const Model& m, const std::vector<Window>& windows) {
  Check(!windows.empty(), "smooth: no calibration windows");
  AbsMaxObserver obs(m.config);
  ObserveLayerMajor(m, TokenSpans(windows), obs);
  return obs.Take();
}

ChannelAbsMax LayerChannelAbsMax(const Model& m, int l, std::vector<Mat>& states) {
  AbsMaxObserver obs(m.config);
  for (Mat& h : states) ForwardBlock(m, l, h, &obs);
  ChannelAbsMax all = obs.Take(), one;
  one.attn_in = {all.attn_in[l]};
  one.o_in = {all.o_in[l]};
  one.ffn_in = {all.ffn_in[l]};
  one.down_in = {all.down_in[l]};
  return one;
}

Vec SmoothScales(const Vec& act, const Vec& wmax, float alpha) {
  Vec s(act.size());
  for (Eigen::Index j = 0; j < s.size(); ++j) {
    s[j] = std::pow(std::max(act[j], 1e-5f), alpha) /
           std::pow(std::max(wmax[j], 1e-5f), 1.0f - alpha);
  }
  return s;
}

TransformedModel SmoothQuant(const TransformedModel& in, const ChannelAbsMax& stats,
                             const SmoothOptions& opt) {
  Check(in.online.empty(), "smooth: the model already has online rotations; smooth before "
                           "rotating");
  Check(opt.alpha >= 0 && opt.alpha <= 1,
        "smooth: --alpha must be in [0, 1], got " + std::to_string(opt.alpha));
  const ModelConfig& c = in.config;
  Check(static_cast<int>(stats.attn_in.size()) == c.n_layers,
        "smooth: statistics cover " + std::to_string(stats.attn_in.size()) + " layers, the model has " +
            std::to_string(c.n_layers));
  TransformedModel t = in;
  ModelWeights& w = t.weights;
  for (int l = 0; l < c.n_layers; ++l) {
    LayerWeights& L = w.layers[l];
    CheckSize(stats.attn_in[l], c.hidden, "the attention input", l);
    CheckSize(stats.ffn_in[l], c.hidden, "the FFN input", l);
    CheckSize(stats.o_in[l], c.q_dim(), "the o_proj input", l);
    CheckSize(stats.down_in[l], c.intermediate, "the down_proj input", l);
    if (opt.attn) {
      const Vec s = SmoothScales(stats.attn_in[l], ColumnAbsMax({&L.wq, &L.wk, &L.wv}), opt.alpha);
      SmoothNorm(w, L.attn_norm, L.attn_norm_gate, s, {&L.wq, &L.wk, &L.wv});
    }
    if (opt.ffn) {
      const Vec s = SmoothScales(stats.ffn_in[l], ColumnAbsMax({&L.w_gate, &L.w_up}), opt.alpha);
      SmoothNorm(w, L.ffn_norm, L.ffn_norm_gate, s, {&L.w_gate, &L.w_up});
    }
    if (opt.vo) SmoothVo(c, w, L, stats.o_in[l], opt.alpha);
    if (opt.ud) {
      const Vec s = SmoothScales(stats.down_in[l], ColumnAbsMax({&L.w_down}), opt.alpha);
      Replace(w, L.w_up, ScaleRows(L.w_up, s.cwiseInverse()));
      Replace(w, L.w_down, ScaleColumns(L.w_down, s));
    }
  }
  char buf[128];
  std::snprintf(buf, sizeof buf, "smooth(alpha=%.2f%s%s%s%s)", opt.alpha, opt.attn ? " qkv" : "",
                opt.ffn ? " gate/up" : "", opt.vo ? " v->o" : "", opt.ud ? " up->down" : "");
  t.steps.push_back(buf);
  return t;
}

}  // namespace sq
