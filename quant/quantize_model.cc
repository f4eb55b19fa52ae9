#include "quant/quantize_model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>

#include "core/dist.h"
#include "core/error.h"
#include "core/parallel_blocks.h"
#include "core/strings.h"
#include "quant/act_clip.h"
#include "quant/gptq.h"
#include "quant/kv_quant.h"
#include "quant/outlier_channels.h"
#include "quant/quant_linear.h"

namespace sq {

// ---- config -------------------------------------------------------------------------------

bool QuantConfig::KeepsFloat(Proj p) const {
  return std::find(keep_float.begin(), keep_float.end(), p) != keep_float.end();
}

QuantConfig QuantConfig::ForLayer(int layer) const {
  QuantConfig c = *this;
  if (std::find(alt_layers.begin(), alt_layers.end(), layer) != alt_layers.end()) {
    c.w_bits = alt_w_bits;
    c.a_bits = alt_a_bits;
  }
  c.alt_layers.clear();
  return c;
}

bool QuantConfig::QuantizesWeight(Proj p) const { return w_bits < 16 && !KeepsFloat(p); }

std::vector<std::pair<std::string, std::string>> QuantConfig::Settings() const {
  auto b = [](bool v) { return std::string(v ? "true" : "false"); };
  auto f = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%g", v);
    return std::string(buf);
  };
  std::string kept;
  for (Proj p : keep_float) {
    if (!kept.empty()) kept += ',';
    kept += RoleName(WeightRole(p));
  }
  std::vector<std::pair<std::string, std::string>> out = {
      {"w_bits", std::to_string(w_bits)},
      {"w_group", std::to_string(w_group)},
      {"w_sym", b(w_sym)},
      {"clip_search", b(clip_search)},
      {"gptq", b(gptq)},
      {"act_order", b(act_order)},
      {"gptq_block", std::to_string(gptq_block)},
      {"gptq_damp", f(gptq_damp)},
      {"a_bits", std::to_string(a_bits)},
      {"a_clip", f(a_clip)},
      {"kv_bits", std::to_string(kv_bits)},
      {"kv_group", std::to_string(kv_group)},
      {"keep_float", kept.empty() ? "none" : kept},
      {"seed", std::to_string(seed)}};
  if (!alt_layers.empty()) {  // only when set: the settings of uniform configs stay as they were
    std::string layers;
    for (int l : alt_layers) layers += (layers.empty() ? "" : ",") + std::to_string(l);
    out.push_back({"alt_layers", layers});
    out.push_back(
        {"alt_bits", "W" + std::to_string(alt_w_bits) + "A" + std::to_string(alt_a_bits)});
  }
  if (a_clip_search) {
    out.push_back({"a_clip_search", b(a_clip_search)});
    out.push_back({"a_clip_min", f(a_clip_min)});
  }
  if (seq_calib) out.push_back({"seq_calib", b(seq_calib)});
  if (outliers) {
    out.push_back({"outlier_channels", std::to_string(outlier_channels)});
    if (outlier_ratio > 0) out.push_back({"outlier_ratio", f(outlier_ratio)});
    out.push_back({"outlier_bits", std::to_string(outlier_bits)});
  }
  return out;
}

void QuantConfig::Validate() const {
  auto bits_ok = [](int b) { return b == 16 || (b >= 2 && b <= 8); };
  Check(bits_ok(w_bits), "--w-bits must be 16 or in [2, 8], got " + std::to_string(w_bits));
  Check(bits_ok(a_bits), "--a-bits must be 16 or in [2, 8], got " + std::to_string(a_bits));
  Check(bits_ok(kv_bits), "--kv-bits must be 16 or in [2, 8], got " + std::to_string(kv_bits));
  Check(w_group >= 0, "--w-group must be >= 0, got " + std::to_string(w_group));
  Check(kv_group >= 0, "--kv-group must be >= 0, got " + std::to_string(kv_group));
  Check(a_clip > 0 && a_clip <= 1, "--a-clip must be in (0, 1], got " + std::to_string(a_clip));
  // Mixed precision keeps every layer quantized (a 16-bit alt weight would skip the layer in
  // the checks and passes that ask w_bits < 16 of the whole model).
  Check(alt_layers.empty() || (w_bits < 16 && alt_w_bits >= 2 && alt_w_bits <= 8),
        "--mixed-layers needs quantized weights in every layer: --w-bits " +
            std::to_string(w_bits) + ", --mixed-bits W" + std::to_string(alt_w_bits) +
            " (both 2-8)");
  Check(bits_ok(alt_a_bits),
        "--mixed-bits: activation bits must be 16 or in [2, 8], got " + std::to_string(alt_a_bits));
  Check(a_clip_min > 0 && a_clip_min <= 1,
        "--a-clip-min must be in (0, 1], got " + std::to_string(a_clip_min));
  Check(!seq_calib || (w_bits < 16 && gptq) || SearchesActClip(),
        "+seq changes GPTQ's and +act-clip's calibration: use it with a GPTQ recipe or +act-clip "
        "(and --a-bits below 16 for +act-clip)");
  Check(learn_steps >= 0, "--learn-steps must be >= 0, got " + std::to_string(learn_steps));
  Check(learn_lr > 0, "--learn-lr must be positive, got " + std::to_string(learn_lr));
  Check(learn_tokens > 0, "--learn-tokens must be positive, got " + std::to_string(learn_tokens));
  Check(!outliers || outlier_channels > 0,
        "--outlier-channels must be positive, got " + std::to_string(outlier_channels));
  Check(!outliers || (outlier_bits >= 2 && outlier_bits <= 8),
        "--outlier-bits must be in [2, 8] (a float side is not supported), got " +
            std::to_string(outlier_bits));
  Check(!outliers || w_bits < 16,
        "+outliers moves channels out of quantized weights: it needs --w-bits below 16");
  Check(gptq_block > 0, "GPTQ block must be positive");
  Check(gptq_damp > 0, "GPTQ dampening must be positive");
}

std::string QuantConfig::CalibrationUser() const {
  if (w_bits < 16 && gptq) return "GPTQ";
  return SearchesActClip() ? "the activation clip search" : "+outliers' channel choice";
}

std::string BitSetting::Name() const {
  char b[32];
  std::snprintf(b, sizeof b, "W%dA%dKV%d", w_bits, a_bits, kv_bits);
  return b + (sensitive_layers > 0 ? "+" + std::to_string(sensitive_layers) + "L" : "") +
         (outlier_channels > 0 ? "+" + std::to_string(outlier_channels) + "C" : "");
}

void QuantConfig::CheckLayers(int n_layers) const {
  for (int l : alt_layers) {
    Check(l >= 0 && l < n_layers, "--mixed-layers: layer " + std::to_string(l) +
                                      ", but the model has " + std::to_string(n_layers) +
                                      " layers (0-" + std::to_string(n_layers - 1) + ")");
  }
}

// ---- building quantized linears -----------------------------------------------------------

namespace {

// The quantized replacement of `orig`: weights `qw` (null: keep float weights), input fake-quant
// `act`. Online input transforms around `orig` are kept around the replacement.
std::shared_ptr<const Linear> MakeQuantLinear(const std::shared_ptr<const Linear>& orig,
                                              std::shared_ptr<const QuantizedWeight> qw,
                                              const ActQuantSpec& act) {
  return ReplaceInsideTransforms(orig, [&](const LinearPtr& inner) -> LinearPtr {
    LinearPtr w = qw ? std::make_shared<QuantWeightLinear>(qw, FloatWeightOf(*inner).bias) : inner;
    return act.enabled() ? std::make_shared<ActQuantLinear>(std::move(w), act) : w;
  });
}

// +outliers: the channels that leave a linear's main path and the side weight [out, k] that
// takes them (QuantConfig::outlier_bits, RTN per output channel).
struct OutlierSide {
  std::vector<int> channels;
  std::shared_ptr<const QuantizedWeight> w;
};

// Moves columns `channels` of `w` [out, in] into an outlier side (w keeps zeros there).
OutlierSide SplitOutliers(Mat& w, std::vector<int> channels, const QuantConfig& cfg) {
  const WeightQuantSpec spec{cfg.outlier_bits, 0, cfg.w_sym, cfg.clip_search};
  OutlierSide side{std::move(channels), nullptr};
  side.w =
      std::make_shared<const QuantizedWeight>(QuantizeRtn(GatherColumns(w, side.channels), spec));
  ZeroColumns(w, side.channels);
  return side;
}

// `lin` with the linear inside its transforms given the outlier side; `quantize_acts`: the side's
// activations are quantized (at outlier_bits) as the main path's are.
LinearPtr WithOutlierSide(const LinearPtr& lin, const OutlierSide& side, const QuantConfig& cfg,
                          bool quantize_acts) {
  LinearPtr w = std::make_shared<QuantWeightLinear>(side.w);
  if (quantize_acts) w = std::make_shared<ActQuantLinear>(w, ActQuantSpec{cfg.outlier_bits, 1.0f});
  return ReplaceInsideTransforms(lin, [&](const LinearPtr& inner) -> LinearPtr {
    return std::make_shared<OutlierChannelsLinear>(inner, side.channels, w);
  });
}

// Zeroes the rows and columns `channels` of a Hessian (the Hessian of the masked inputs);
// returns how many of them were not already zero (not dead inputs).
int MaskHessian(Eigen::MatrixXd& h, const std::vector<int>& channels) {
  int live = 0;
  for (int c : channels) {
    live += h(c, c) != 0;
    h.row(c).setZero();
    h.col(c).setZero();
  }
  return live;
}

struct Key {
  int layer;
  Proj proj;
  bool operator<(const Key& o) const {
    return layer != o.layer ? layer < o.layer : static_cast<int>(proj) < static_cast<int>(o.proj);
  }
};
using WeightMap = std::map<Key, std::shared_ptr<const QuantizedWeight>>;

// The (layer, projection) pairs to quantize, in forward order.
std::vector<Key> QuantizedKeys(const Model& m, const QuantConfig& cfg) {
  std::vector<Key> keys;
  for (int l = 0; l < m.config.n_layers; ++l) {
    for (Proj p : kAllProjs) {
      if (p != Proj::kLmHead && !cfg.KeepsFloat(p)) keys.push_back({l, p});
    }
  }
  if (!cfg.KeepsFloat(Proj::kLmHead)) keys.push_back({-1, Proj::kLmHead});
  return keys;
}

// Refuses NaN / Inf in a weight that is about to be quantized: it would give a NaN scale and
// silently poison the whole row (or group) of the quantized model.
void CheckFiniteWeights(const Model& m, const std::vector<Key>& keys) {
  for (const Key& k : keys) {
    const Mat& w = FloatWeightOf(*LinearAt(m, k.layer, k.proj)).w;
    if (w.allFinite()) continue;
    for (Eigen::Index r = 0; r < w.rows(); ++r) {
      for (Eigen::Index c = 0; c < w.cols(); ++c) {
        if (std::isfinite(w(r, c))) continue;
        const std::string role = RoleName(WeightRole(k.proj));
        throw Error((k.layer < 0 ? role : "layer " + std::to_string(k.layer) + " " + role) +
                    " weight [" + std::to_string(w.rows()) + ", " + std::to_string(w.cols()) +
                    "] has " + std::to_string(w(r, c)) + " at [" + std::to_string(r) + ", " +
                    std::to_string(c) + "]: refusing to quantize");
      }
    }
  }
}

// ---- GPTQ and the activation clip search, layer by layer ----------------------------------

// Thrown by HessianObserver once it has its site: the rest of the pass is not needed, so a
// calibration pass stops there (the q/k/v Hessian needs only the norm, not the block).
struct SiteCollected {};

// Runs `fn` (a forward pass over one window) until the observer has what it needs.
template <typename Fn>
void UntilCollected(Fn&& fn) {
  try {
    fn();
  } catch (const SiteCollected&) {
  }
}

// Collects the Hessians of the linears that read one site of one layer. Linears behind an online
// input transform get their own Hessian of the transformed input; plain ones share one.
class HessianObserver : public ForwardObserver {
 public:
  // `split`: the windows are this rank's block (core/dist.h); the inputs are kept until
  // CombineRanks adds them to the Hessians in rank order. `hessian`: accumulate Hessians (GPTQ);
  // `keep_inputs`: keep every window's input (the activation clip search).
  // `absmax`: track each slot's per-channel max |x| (+outliers' channel choice).
  HessianObserver(Site site, int layer, bool split, bool hessian = true, bool keep_inputs = false,
                  bool absmax = false)
      : site_(site),
        layer_(layer),
        split_(split),
        hessian_(hessian),
        keep_inputs_(keep_inputs),
        absmax_(absmax) {}
  // Returns the slot of `lin`'s Hessian.
  int Track(const Linear& lin) {
    const auto* t = dynamic_cast<const InputTransformLinear*>(&lin);
    for (size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].transform == t) return static_cast<int>(i);
    }
    slots_.push_back({t, HessianAccumulator(hessian_ ? lin.in_features() : 0)});
    // Sized up front: a rank with no windows still adds its zeros in CombineRanks.
    if (absmax_) slots_.back().absmax = Vec::Zero(lin.in_features());
    return static_cast<int>(slots_.size()) - 1;
  }
  bool Wants(Site site, int layer) const override { return site == site_ && layer == layer_; }
  void Observe(const Where& at, const Mat& x) override {
    if (at.site != site_ || at.layer != layer_) return;
    for (Slot& s : slots_) {
      Mat xt;
      if (s.transform) s.transform->TransformInput(x, xt);
      const Mat& seen = s.transform ? xt : x;
      if (keep_inputs_) s.inputs.push_back(seen);
      if (absmax_) RaiseChannelAbsMax(s.absmax, seen);
      if (!hessian_) continue;
      if (split_) {
        s.kept.push_back(seen);
      } else {
        s.h.Add(seen);
      }
    }
    throw SiteCollected{};  // observers are called outside parallel regions: safe to unwind
  }
  const HessianAccumulator& Hessian(int slot) const { return slots_[slot].h; }
  Eigen::MatrixXd TakeHessian(int slot) { return slots_[slot].h.TakeH(); }
  const std::vector<Mat>& Inputs(int slot) const { return slots_[slot].inputs; }
  const Vec& AbsMax(int slot) const { return slots_[slot].absmax; }
  // The kept inputs of `slot` with columns `channels` zeroed (what the masked main path sees).
  void MaskInputs(int slot, const std::vector<int>& channels) {
    for (Mat& x : slots_[slot].inputs) ZeroColumns(x, channels);
  }
  void CombineRanks() override {
    for (Slot& s : slots_) {
      s.h.AddInRankOrder(s.kept);
      s.kept.clear();
      if (absmax_) dist::Max(std::span<float>(s.absmax.data(), size_t(s.absmax.size())));
    }
  }

 private:
  struct Slot {
    const InputTransformLinear* transform;
    HessianAccumulator h;
    std::vector<Mat> kept = {};    // split: this rank's inputs, until CombineRanks
    std::vector<Mat> inputs = {};  // keep_inputs: every window's input
    Vec absmax = {};               // absmax: per channel, over every window
  };
  Site site_;
  int layer_;
  bool split_, hessian_, keep_inputs_, absmax_;
  std::vector<Slot> slots_;
};

// Quantizes the weights layer by layer on the calibration states, true sequential: GPTQ (or RTN)
// weights, then the activation clip search of each linear on the inputs it saw.
class GptqRunner {
 public:
  // `states`: the calibration windows' hidden states entering the model's first layer (advanced
  // in place), or null to start from the embeddings of `calib`.
  // `float_states` (+seq): the same in the float model `fp`, or null to embed `calib`.
  GptqRunner(Model& work, const Model& fp, const QuantConfig& cfg, const std::vector<Window>& calib,
             WeightMap& weights, QuantizeReport& rep, std::vector<Mat>* states,
             std::vector<Mat>* float_states)
      : work_(work),
        fp_(fp),
        cfg_(cfg),
        weights_(weights),
        rep_(rep),
        hs_(states ? *states : own_hs_),
        fhs_(float_states ? *float_states : own_fhs_),
        split_(states != nullptr && dist::Size() > 1) {
    if (!states) {
      for (const Window& w : calib) hs_.push_back(Embed(work_, w.tokens));
    }
    if (cfg_.seq_calib) {
      Check(!states || float_states, "+seq needs the float model's calibration states");
      if (!float_states) {
        for (const Window& w : calib) fhs_.push_back(Embed(fp_, w.tokens));
      }
    }
    for (const Mat& h : hs_) {
      rep_.calib_tokens += static_cast<long>(h.rows());
      rep_.hidden_state_bytes += static_cast<size_t>(h.size()) * sizeof(float);
    }
    rep_.calib_windows = static_cast<int>(hs_.size());
  }

  void Layer(int l) {
    for (Site site : kLayerInputSites) {
      std::vector<Proj> projs;
      for (Proj p : ProjsReading(site)) {
        if (!cfg_.KeepsFloat(p)) projs.push_back(p);
      }
      if (!projs.empty()) Stage(l, site, projs);
    }
    for (Mat& h : hs_) ForwardBlock(work_, l, h, nullptr);
    for (Mat& h : fhs_) ForwardBlock(fp_, l, h, nullptr);
  }

  void LmHead() { Stage(-1, Site::kHeadInput, {Proj::kLmHead}); }

 private:
  bool gptq() const { return cfg_.w_bits < 16 && cfg_.gptq; }

  // One true-sequential stage: the linears `projs` of layer l (-1: the lm_head) that read `site`
  // get their inputs (and, +seq, the float model's inputs), then weights, then clip ratios.
  void Stage(int l, Site site, const std::vector<Proj>& projs) {
    const int at = l < 0 ? work_.config.n_layers : l;
    const bool seq = cfg_.seq_calib;
    HessianObserver obs(site, at, split_, gptq(), cfg_.SearchesActClip() || seq,
                        cfg_.SplitsOutliers());
    HessianObserver float_obs(site, at, /*split=*/false, /*hessian=*/false, seq);
    std::vector<int> slot;
    std::vector<LinearPtr> float_linears;  // inside their transforms, before quantization
    for (Proj p : projs) {
      slot.push_back(obs.Track(*LinearAt(work_, l, p)));
      float_obs.Track(*LinearAt(fp_, l, p));  // the same transforms: the same slots
      float_linears.push_back(InsideTransforms(LinearAt(work_, l, p)));
    }
    ObserveSite(work_, hs_, at, obs);
    if (seq) ObserveSite(fp_, fhs_, at, float_obs);
    if (split_) obs.CombineRanks();  // once per stage: each stage needs the last's weights
    if (cfg_.SplitsOutliers()) ChooseOutliers(l, projs, slot, obs, seq ? &float_obs : nullptr);
    if (gptq()) {
      QuantizeSharingFactors(l, projs, slot, obs, float_obs);
    } else {
      for (Proj p : projs) QuantizeRtnAt(l, p);
    }
    for (size_t i = 0; i < projs.size(); ++i) {
      if (cfg_.SearchesActClip()) {
        SearchActClip(l, projs[i], obs.Inputs(slot[i]), seq ? &float_obs.Inputs(slot[i]) : nullptr,
                      *float_linears[i]);
      }
      // +seq: the next stages see this linear's quantized activations.
      if (seq && cfg_.ForLayer(l).a_bits < 16)
        InstallCalibrating(l, projs[i], ActSpecOf(l, projs[i]));
      float_linears_.erase({l, projs[i]});  // its float weights are not needed past its stage
    }
  }

  // +outliers: each linear's channels (shared by the linears of a slot) from the largest
  // calibration |x|; the kept inputs are masked, so the clip search and +seq fit the main path.
  void ChooseOutliers(int l, const std::vector<Proj>& projs, const std::vector<int>& slot,
                      HessianObserver& obs, HessianObserver* float_obs) {
    for (size_t i = 0; i < projs.size(); ++i) {
      const bool first = std::find(slot.begin(), slot.begin() + i, slot[i]) == slot.begin() + i;
      std::vector<int> channels =
          OutlierChannelsOf(obs.AbsMax(slot[i]), cfg_.outlier_channels, cfg_.outlier_ratio);
      if (channels.empty()) continue;  // --outlier-ratio: no channel of this input qualifies
      channels_[{l, projs[i]}] = std::move(channels);
      if (!first) continue;
      obs.MaskInputs(slot[i], channels_[{l, projs[i]}]);
      if (float_obs) float_obs->MaskInputs(slot[i], channels_[{l, projs[i]}]);
    }
  }

  // (l, p)'s float weight, moved out of the way of its outlier side when +outliers split it.
  Mat MainWeight(int l, Proj p, const Mat& w) {
    auto it = channels_.find({l, p});
    if (it == channels_.end()) return w;
    Mat main = w;
    outlier_sides_[{l, p}] = SplitOutliers(main, it->second, cfg_.ForLayer(l));
    return main;
  }

  // (l, p)'s quantized replacement in the calibration stream, built from its float linear: its
  // weights (if quantized), activations quantized as `act` says, and its outlier side with
  // activations at outlier_bits when `act` quantizes them (as the final model runs it).
  void InstallCalibrating(int l, Proj p, const ActQuantSpec& act) {
    LinearPtr& lin = LinearAt(work_, l, p);
    const LinearPtr& original = float_linears_.try_emplace({l, p}, lin).first->second;
    auto w = weights_.find({l, p});
    lin = MakeQuantLinear(original, w == weights_.end() ? nullptr : w->second, act);
    if (auto it = outlier_sides_.find({l, p}); it != outlier_sides_.end()) {
      lin = WithOutlierSide(lin, it->second, cfg_, act.enabled());
    }
  }

  // Runs every window of `states` up to `site` of layer `at` (at == n_layers: the head input).
  static void ObserveSite(const Model& m, const std::vector<Mat>& states, int at,
                          HessianObserver& obs) {
    for (const Mat& h : states) {
      if (at == m.config.n_layers) {
        UntilCollected([&] { Head(m, h, &obs); });
      } else {
        Mat hh = h;
        UntilCollected([&] { ForwardBlock(m, at, hh, &obs); });
      }
    }
  }

  GptqOptions Options() const { return {cfg_.gptq_damp, cfg_.gptq_block, cfg_.act_order}; }

  // Linears that read the same input (q/k/v, gate/up) share a Hessian: factor it once.
  // +seq: the weights are first re-targeted to the float model's inputs (AsymmetricRetarget).
  void QuantizeSharingFactors(int l, const std::vector<Proj>& projs, const std::vector<int>& slot,
                              HessianObserver& obs, const HessianObserver& float_obs) {
    for (size_t i = 0; i < projs.size(); ++i) {
      if (std::find(slot.begin(), slot.begin() + i, slot[i]) != slot.begin() + i) continue;
      Eigen::MatrixXd h = obs.TakeHessian(slot[i]);
      int masked = 0;  // outlier channels GPTQ will see as dead: not counted as dead inputs
      if (auto it = channels_.find({l, projs[i]}); it != channels_.end()) {
        masked = MaskHessian(h, it->second);
      }
      Eigen::MatrixXd retarget;
      if (cfg_.seq_calib) {
        retarget = AsymmetricRetarget(h, float_obs.Inputs(slot[i]), obs.Inputs(slot[i]),
                                      cfg_.gptq_damp, split_);
      }
      const GptqFactor f = FactorHessian(std::move(h), Options());
      for (size_t j = i; j < projs.size(); ++j) {
        if (slot[j] == slot[i]) {
          Quantize(l, projs[j], f, cfg_.seq_calib ? &retarget : nullptr);
          gptq_stats_[{l, projs[j]}].dead_columns -= masked;
        }
      }
    }
  }

  ActQuantSpec ActSpecOf(int l, Proj p) const {
    ActQuantSpec act = cfg_.ForLayer(l).act_spec();
    if (auto it = act_clips_.find({l, p}); it != act_clips_.end()) act.clip = it->second.clip;
    return act;
  }

  // `retarget` (+seq, may be null): W <- W (I + P) before GPTQ.
  void Quantize(int l, Proj p, const GptqFactor& f, const Eigen::MatrixXd* retarget = nullptr) {
    GptqStats stats;
    Mat w = FloatWeightOf(*LinearAt(work_, l, p)).w;
    if (retarget) {  // leaves outlier columns as they were (the masked Hessian's P is 0 there)
      const Eigen::MatrixXd wd = w.cast<double>();
      ForEachBlock(w.cols(), [&](Eigen::Index c0, Eigen::Index n) {
        w.middleCols(c0, n) =
            (wd.middleCols(c0, n) + wd * retarget->middleCols(c0, n)).cast<float>();
      });
    }
    auto qw = std::make_shared<const QuantizedWeight>(
        GptqQuantize(MainWeight(l, p, w), f, cfg_.ForLayer(l).weight_spec(), Options(), &stats));
    weights_[{l, p}] = qw;
    gptq_stats_[{l, p}] = stats;
    InstallCalibrating(l, p, ActQuantSpec{});  // weight-only while calibrating
  }

  // Round to nearest, as QuantizeModel without calibration (nothing for float weights).
  void QuantizeRtnAt(int l, Proj p) {
    if (cfg_.w_bits >= 16) return;
    const Mat w = MainWeight(l, p, FloatWeightOf(*LinearAt(work_, l, p)).w);
    auto qw =
        std::make_shared<const QuantizedWeight>(QuantizeRtn(w, cfg_.ForLayer(l).weight_spec()));
    weights_[{l, p}] = qw;
    InstallCalibrating(l, p, ActQuantSpec{});
  }

  // The clip ratio of (l, p)'s activations: err(c) on this rank's inputs, continued across
  // ranks in window order, so every rank picks the same ratio as one process.
  // `float_inputs` (+seq, may be null): the targets are the float linear on these instead.
  void SearchActClip(int l, Proj p, const std::vector<Mat>& inputs,
                     const std::vector<Mat>* float_inputs, const Linear& float_linear) {
    const std::vector<float> grid = ActClipGrid(cfg_.a_clip_min);
    std::vector<double> errors(grid.size(), 0.0);
    const LinearPtr& quantized = InsideTransforms(LinearAt(work_, l, p));
    auto add_mine = [&] {
      AddActClipErrors(inputs, float_linear, quantized, cfg_.ForLayer(l).act_spec(), grid, errors,
                       float_inputs);
    };
    if (split_) {
      dist::FoldInRankOrder(errors, add_mine);
    } else {
      add_mine();
    }
    act_clips_[{l, p}] = {grid[BestActClip(errors)], errors};
  }

 public:
  struct ActClip {
    float clip;
    std::vector<double> errors;
  };
  std::map<Key, ActClip> act_clips_;

 public:
  std::map<Key, GptqStats> gptq_stats_;
  std::map<Key, OutlierSide> outlier_sides_;

 private:
  std::map<Key, std::vector<int>> channels_;  // +outliers: chosen before the weights
  std::map<Key, LinearPtr> float_linears_;    // each linear of the current stage, unquantized
  Model& work_;
  const Model& fp_;  // the float model (+seq: its states are the targets)
  const QuantConfig& cfg_;
  WeightMap& weights_;
  QuantizeReport& rep_;
  std::vector<Mat> own_hs_;
  std::vector<Mat>& hs_;  // per calibration window: hidden state entering the next layer [T, d]
  std::vector<Mat> own_fhs_;
  std::vector<Mat>& fhs_;  // +seq: the same windows' states in the float model
  bool split_;  // hs_ is this rank's block of the windows: Hessians are added across ranks
};

}  // namespace

Model QuantizeModel(const Model& fp, const QuantConfig& cfg, const std::vector<Window>& calib,
                    QuantizeReport* report, const std::function<void(int, int)>& progress,
                    std::vector<Mat>* calib_states, std::vector<Mat>* float_states) {
  const auto start = std::chrono::steady_clock::now();
  cfg.Validate();
  cfg.CheckLayers(fp.config.n_layers);
  QuantizeReport rep;
  const std::vector<Key> keys = QuantizedKeys(fp, cfg);
  if (cfg.w_bits < 16) CheckFiniteWeights(fp, keys);
  WeightMap weights;
  std::map<Key, GptqStats> gptq_stats;
  const int L = fp.config.n_layers;
  std::map<Key, GptqRunner::ActClip> act_clips;
  std::map<Key, OutlierSide> outlier_sides;
  if (cfg.Calibrates()) {
    Check(!calib.empty() || (calib_states && !calib_states->empty()),
          cfg.CalibrationUser() + " needs calibration windows (--calib FILE)");
    Model work = fp;
    work.kv_quant = nullptr;  // +seq: the KV quantizer joins the stream
    if (cfg.seq_calib && cfg.kv_bits < 16) {
      work.kv_quant = std::make_shared<GroupKvQuantizer>(cfg.kv_bits, cfg.kv_group);
    }
    GptqRunner runner(work, fp, cfg, calib, weights, rep, calib_states, float_states);
    for (int l = 0; l < L; ++l) {
      runner.Layer(l);
      if (progress) progress(l + 1, L);
    }
    if (!cfg.KeepsFloat(Proj::kLmHead)) runner.LmHead();
    gptq_stats = runner.gptq_stats_;
    act_clips = runner.act_clips_;
    outlier_sides = runner.outlier_sides_;
  } else if (cfg.w_bits < 16) {
    for (size_t i = 0; i < keys.size(); ++i) {
      const Key& k = keys[i];
      weights[k] = std::make_shared<const QuantizedWeight>(QuantizeRtn(
          FloatWeightOf(*LinearAt(fp, k.layer, k.proj)).w, cfg.ForLayer(k.layer).weight_spec()));
      if (progress && k.proj == Proj::kDown) progress(k.layer + 1, L);
    }
  }

  Model q = fp;
  for (const Key& k : keys) {
    const QuantConfig lc = cfg.ForLayer(k.layer);
    ActQuantSpec act = lc.act_spec();
    const std::string wfmt = lc.w_bits < 16
                                 ? lc.weight_spec().Describe() + (lc.gptq ? " gptq" : " rtn") +
                                       (lc.act_order ? " act-order" : "")
                                 : std::string("w16");
    LinearReport lr;
    if (auto it = act_clips.find(k); it != act_clips.end()) {
      act.clip = it->second.clip;
      lr.act_clip_errors = it->second.errors;
    }
    lr.layer = k.layer, lr.proj = k.proj, lr.format = wfmt + ", " + act.Describe();
    if (auto it = gptq_stats.find(k); it != gptq_stats.end()) {
      lr.dead_columns = it->second.dead_columns;
      lr.gptq_damp = it->second.damp_used;
    }
    std::shared_ptr<const QuantizedWeight> qw;
    if (auto it = weights.find(k); it != weights.end()) qw = it->second;
    if (qw) rep.weight_bytes += qw->bytes();
    if (qw || act.enabled()) {
      std::shared_ptr<const Linear>& lin = LinearAt(q, k.layer, k.proj);
      lin = MakeQuantLinear(lin, qw, act);
      if (auto it = outlier_sides.find(k); it != outlier_sides.end()) {
        lin = WithOutlierSide(lin, it->second, lc, act.enabled());
        lr.outlier_channels = it->second.channels;
        lr.format += " + " + std::to_string(lr.outlier_channels.size()) + " outlier channels w" +
                     std::to_string(lc.outlier_bits) +
                     (act.enabled() ? "a" + std::to_string(lc.outlier_bits) : "");
        rep.weight_bytes += it->second.w->bytes();
      }
    } else {
      lr.format = "float";
    }
    rep.linears.push_back(lr);
  }
  for (Proj p : cfg.keep_float) {
    if (p == Proj::kLmHead) {
      rep.linears.push_back({-1, p, "float (kept)"});
    } else {
      for (int l = 0; l < L; ++l) rep.linears.push_back({l, p, "float (kept)"});
    }
  }
  if (cfg.kv_bits < 16) {
    auto kv = std::make_shared<GroupKvQuantizer>(cfg.kv_bits, cfg.kv_group);
    Check(cfg.kv_group == 0 || fp.config.head_dim % cfg.kv_group == 0,
          "--kv-group " + std::to_string(cfg.kv_group) + " does not divide head_dim " +
              std::to_string(fp.config.head_dim));
    rep.kv = kv->Describe();
    q.kv_quant = kv;
  } else {
    rep.kv = "float";
  }
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (report) *report = std::move(rep);
  return q;
}

}  // namespace sq
