#include "quant/recipe_pipeline.h"

#include <algorithm>
#include <chrono>

#include "core/dist.h"
#include "core/error.h"
#include "core/strings.h"
#include "quant/auto_recipe.h"
#include "quant/integer_linear.h"
#include "quant/recipe_steps.h"
#include "quant/smooth.h"

namespace sq {

namespace {

// The model-level tensors of `fp` as a model without layers.
Model HeadOnly(const Model& fp) {
  Model h;
  h.config = SliceLayers(fp.config, 0, 0);
  h.weights.embed = fp.weights.embed;
  h.weights.final_norm = fp.weights.final_norm;
  h.weights.final_norm_gate = fp.weights.final_norm_gate;
  h.weights.lm_head = fp.weights.lm_head;
  h.weights.storage = fp.weights.storage;
  h.lm_head = fp.lm_head;
  return h;
}

// A shell the streams run: the model-level tensors of `head` and empty slots for `full`'s
// layers (whose per-layer facts, windows and NoPE, the head-only config lost).
Model Shell(const Model& head, const ModelConfig& full) {
  Model m = head;
  m.config.n_layers = full.n_layers;
  m.config.layer_window = full.layer_window;
  m.config.layer_nope = full.layer_nope;
  m.weights.layers.resize(full.n_layers);
  m.linears.resize(full.n_layers);
  return m;
}

// The maxima over every rank's calibration windows (exact in any order).
void MaxAcrossRanks(ChannelAbsMax& s) {
  for (std::vector<Vec>* site : {&s.attn_in, &s.o_in, &s.ffn_in, &s.down_in}) {
    for (Vec& v : *site) dist::Max(std::span<float>(v.data(), static_cast<size_t>(v.size())));
  }
}

class Stopwatch {
 public:
  explicit Stopwatch(double& total) : total_(total), t0_(std::chrono::steady_clock::now()) {}
  ~Stopwatch() {
    total_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }

 private:
  double& total_;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace

RecipePipeline::RecipePipeline(const Model& fp, const Recipe& recipe,
                               const std::vector<Window>& calib, bool integer_kernels)
    : fp_(fp), recipe_(recipe), calib_(calib), integer_kernels_(integer_kernels) {
  Stopwatch clock(seconds_);
  recipe_ = ResolveRecipe(fp_, recipe, calib_, log_);
  recipe_.config.CheckLayers(fp_.config.n_layers);  // slices are quantized with ForLayer(l)
  const std::vector<std::string>& steps = recipe_.transforms;
  // Smoothing statistics come from the float model, so smoothing must come first.
  Check(!Has(steps, "smooth") || steps.front() == "smooth",
        "recipe '" + recipe_.name + "': smooth must be its first transform");
  const bool smooth = Has(steps, "smooth");
  Check(!smooth || !calib_.empty(), "transform smooth needs calibration text (--calib FILE)");
  Check(!smooth || !Has(steps, "rotate-learned"),
        "recipe '" + recipe_.name + "': smooth and rotate-learned cannot be streamed together");
  head_t_ = HeadOnly(fp_);
  for (const std::string& name : steps) {
    if (name == "rotate-learned") {
      learned_ = LearnAndLog(SampleResidualInputs(), recipe_.config, log_);
      head_t_ = RotateWithLearned(head_t_, recipe_.config, learned_, log_);
    } else if (name == "smooth") {
      head_t_ = SmoothWithStats(head_t_, recipe_.config, ChannelAbsMax{}, calib_.size(), log_);
    } else {
      head_t_ = FindTransform(name, recipe_.name)(head_t_, recipe_.config, calib_, log_);
    }
  }
  for (const std::string& name : recipe_.post) {
    if (name == "sink-aware") {
      SinkAwareOptions opt;
      opt.ratio = recipe_.config.sink_ratio;
      log_.push_back(opt.Describe());
    }
  }
  t_ = Shell(head_t_, fp_.config);
  q_ = Shell(head_t_, fp_.config);
  // Under mpirun each rank calibrates on its block of the windows (core/dist.h) and the
  // statistics are combined before each layer is transformed or quantized.
  const dist::Block mine = dist::BlockOf(calib_.size());
  smooth_ = smooth;
  for (size_t w = mine.begin; smooth_ && w < mine.end; ++w) {
    calib_fp_.push_back(Embed(fp_, calib_[w].tokens));
  }
  const QuantConfig& c = recipe_.config;
  calibrates_ = c.Calibrates();
  Check(!calibrates_ || !calib_.empty(),
        c.CalibrationUser() + " needs calibration windows (--calib FILE)");
  for (size_t w = mine.begin; calibrates_ && w < mine.end; ++w) {
    calib_q_.push_back(Embed(t_, calib_[w].tokens));
    if (c.seq_calib) calib_tf_.push_back(calib_q_.back());
  }
  // The lm_head: quantized now unless GPTQ needs the last layer's calibration states.
  if (!HeadNeedsCalibration()) q_.lm_head = QuantizeSlice(head_t_, -1, nullptr, nullptr).lm_head;
}

bool RecipePipeline::HeadNeedsCalibration() const {
  const QuantConfig& c = recipe_.config;
  return c.Calibrates() && !c.KeepsFloat(Proj::kLmHead);
}

LayerMajorHooks RecipePipeline::Hooks() {
  LayerMajorHooks h;
  h.before_layer = [this](int l) { PrepareLayer(l); };
  h.after_layer = [this](int l) { ReleaseLayer(l); };
  h.before_head = [this] { PrepareHead(); };
  return h;
}

Model RecipePipeline::LayerSlice(int l) const {
  Model s;
  s.config = SliceLayers(fp_.config, l, 1);
  s.weights.storage = fp_.weights.storage;
  s.weights.layers = {fp_.weights.layers[l]};
  // Stand-ins for the model-level tensors, which the transforms also touch: one row each, so a
  // transform of the slice costs nothing there (the real ones were transformed up front).
  const int64_t d = fp_.config.hidden;
  s.weights.embed = s.weights.Own(Mat::Zero(1, d), {1, d});
  s.weights.lm_head = s.weights.Own(Mat::Zero(1, d), {1, d});
  s.weights.final_norm = s.weights.Own(Mat::Ones(d, 1), {d});
  s.linears = {fp_.linears[l]};  // the same objects: untransformed linears stay fp's own
  s.lm_head = std::make_shared<DenseLinear>(s.weights.lm_head);
  return s;
}

Model RecipePipeline::TransformSlice(Model cur, const std::string& upto, const ChannelAbsMax& stats,
                                     std::vector<std::string>& log) const {
  for (const std::string& name : recipe_.transforms) {
    if (name == upto) break;
    if (name == "rotate-learned") {
      cur = RotateWithLearned(cur, recipe_.config, learned_, log);
    } else if (name == "smooth") {
      cur = SmoothWithStats(cur, recipe_.config, stats, calib_.size(), log);
    } else {
      cur = FindTransform(name, recipe_.name)(cur, recipe_.config, calib_, log);
    }
  }
  return cur;
}

Mat RecipePipeline::SampleResidualInputs() const {
  Check(!calib_.empty(), "transform rotate-learned needs calibration text (--calib FILE)");
  const ModelConfig& c = fp_.config;
  ResidualInputSampler sampler(c.hidden, ResidualInputRows(c, calib_), recipe_.config.learn_tokens);
  std::vector<Mat> states;
  for (const Window& w : calib_) states.push_back(Embed(fp_, w.tokens));
  std::vector<std::string> ignored;
  for (int l = 0; l < c.n_layers; ++l) {
    // The same blocks on the same states as ObserveLayerMajor over the transformed model.
    const Model cur = TransformSlice(LayerSlice(l), "rotate-learned", ChannelAbsMax{}, ignored);
    for (Mat& h : states) ForwardBlock(cur, 0, h, &sampler);
    ReleaseLayerPages(fp_, l);
  }
  return sampler.Take();
}

Model RecipePipeline::QuantizeSlice(const Model& t, int layer, std::vector<Mat>* states,
                                    std::vector<Mat>* float_states) {
  QuantConfig cfg = recipe_.config.ForLayer(layer);  // the slice's one layer is its layer 0
  if (layer >= 0 && !cfg.KeepsFloat(Proj::kLmHead)) cfg.keep_float.push_back(Proj::kLmHead);
  QuantizeReport rep;
  Model q = QuantizeModel(t, cfg, calib_, &rep, {}, states, float_states);
  for (LinearReport lr : rep.linears) {
    if ((layer >= 0) != (lr.layer >= 0)) continue;  // a slice's stand-in lm_head, or no layers
    if (layer >= 0) lr.layer = layer;
    report_.linears.push_back(lr);
  }
  report_.weight_bytes += rep.weight_bytes;
  if (layer >= 0 || report_.kv.empty()) report_.kv = rep.kv;
  report_.calib_windows = std::max(report_.calib_windows, rep.calib_windows);
  report_.calib_tokens = std::max(report_.calib_tokens, rep.calib_tokens);
  report_.hidden_state_bytes = std::max(report_.hidden_state_bytes, rep.hidden_state_bytes);
  for (const std::string& name : recipe_.post) {
    if (name == "sink-aware") {  // one counter for the whole model, as MakeSinkAware keeps
      SinkAwareOptions opt;
      opt.ratio = cfg.sink_ratio;
      q = MakeSinkAware(q, opt, &sink_counts_);
    } else {
      std::vector<std::string> ignored;  // logged once, by the whole-model run's description
      q = FindPostStep(name, recipe_.name)(q, cfg, ignored);
    }
  }
  if (integer_kernels_) report_.integer_linears += UseIntegerKernels(q);
  return q;
}

void RecipePipeline::Install(Model& shell, Model& slice, int l,
                             std::vector<std::shared_ptr<const void>>& keep) {
  shell.weights.layers[l] = slice.weights.layers[0];
  shell.linears[l] = slice.linears[0];
  keep = slice.weights.storage;
}

void RecipePipeline::PrepareLayer(int l) {
  Stopwatch clock(seconds_);
  Model cur = LayerSlice(l);
  ChannelAbsMax stats;
  if (smooth_) {
    stats = LayerChannelAbsMax(cur, 0, calib_fp_);  // advances calib_fp_
    MaxAcrossRanks(stats);
  }
  std::vector<std::string> ignored;  // the log was written by the model-level pass
  cur = TransformSlice(std::move(cur), "", stats, ignored);
  Model q = QuantizeSlice(cur, l, calibrates_ ? &calib_q_ : nullptr, FloatStates());
  if (!q_.kv_quant) q_.kv_quant = q.kv_quant;  // one KV quantizer serves every layer
  Install(t_, cur, l, t_layer_);
  Install(q_, q, l, q_layer_);
}

void RecipePipeline::ReleaseLayer(int l) {
  ReleaseLayerPages(fp_, l);  // read once: without streams (BuildAll) nobody else drops them
  t_.weights.layers[l] = {};
  t_.linears[l] = {};
  t_layer_.clear();
  if (keep_layers_) {
    CompactQuantizedLayer(l);
  } else {
    q_.weights.layers[l] = {};
    q_.linears[l] = {};
  }
  q_layer_.clear();
}

void RecipePipeline::CompactQuantizedLayer(int l) {
  for (Proj p : kAllProjs) {
    if (p != Proj::kLmHead && !recipe_.config.QuantizesWeight(p)) {
      // A float linear reads its weight from the slice: keep the slice's storage.
      q_.weights.storage.insert(q_.weights.storage.end(), q_layer_.begin(), q_layer_.end());
      return;
    }
  }
  LayerWeights& L = q_.weights.layers[l];
  const LayerWeights& src = fp_.weights.layers[l];
  // The quantized linears hold their packed weights; the views only tell an export the
  // checkpoint's size and dtype, so they point back into the mapped checkpoint.
  L.wq = src.wq, L.wk = src.wk, L.wv = src.wv, L.wo = src.wo;
  L.w_gate = src.w_gate, L.w_up = src.w_up, L.w_down = src.w_down;
  // Small float tensors the forward pass reads: copied out of the slice's storage.
  for (TensorView* v : {&L.attn_norm, &L.ffn_norm, &L.attn_post_norm, &L.ffn_post_norm, &L.q_norm,
                        &L.k_norm, &L.bq, &L.bk, &L.bv, &L.attn_norm_gate.down,
                        &L.attn_norm_gate.up, &L.ffn_norm_gate.down, &L.ffn_norm_gate.up}) {
    if (!v->empty()) *v = q_.weights.Own(ToMat(*v), v->shape);
  }
}

void RecipePipeline::BuildAll(const std::function<void(int, int)>& progress) {
  const int n = fp_.config.n_layers;
  if (progress) progress(0, n);
  for (int l = 0; l < n; ++l) {
    PrepareLayer(l);
    ReleaseLayer(l);
    if (progress) progress(l + 1, n);
  }
  PrepareHead();
}

void RecipePipeline::PrepareHead() {
  if (!HeadNeedsCalibration()) return;
  Stopwatch clock(seconds_);
  q_.lm_head = QuantizeSlice(head_t_, -1, &calib_q_, FloatStates()).lm_head;
}

QuantizeReport RecipePipeline::report() const {
  QuantizeReport r = report_;
  r.seconds = seconds_;
  return r;
}

}  // namespace sq
