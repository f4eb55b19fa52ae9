// QuantizeModel: float model in, quantized model out. What to do is plain data (QuantConfig);
// transforms (quant/transformed_model.h) change the float weights first and then call this.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "calib/dataset.h"
#include "core/model_weights.h"
#include "model/model.h"
#include "model/proj.h"
#include "quant/quantizer.h"

namespace sq {

// A weight / activation / KV bit width setting (a row's, or one of a --pareto sweep).
struct BitSetting {
  int w_bits = 4, a_bits = 4, kv_bits = 16;
  // Mixed precision: this many layers, those most sensitive to the bits above, at W8A8.
  int sensitive_layers = 0;
  // 8-bit outlier channels (+outliers) per linear; 0: none.
  int outlier_channels = 0;
  std::string Name() const;  // "W4A8KV16", "W4A4KV16+2L", "W4A4KV16+32C"
};

struct QuantConfig {
  int w_bits = 4;            // 2..8, or 16: weights stay float
  int w_group = 0;           // G columns per scale along K; 0: per output channel
  bool w_sym = true;
  bool clip_search = true;   // MSE clip-ratio search per channel / group (RTN and GPTQ scales)
  bool gptq = false;         // GPTQ instead of round-to-nearest (needs calibration windows)
  bool act_order = false;    // GPTQ: columns by decreasing Hessian diagonal
  int gptq_block = 128;
  double gptq_damp = 0.01;   // times mean(diag(H))
  int a_bits = 16;           // 2..8, or 16: activations stay float
  float a_clip = 1.0f;
  // +act-clip: each quantized linear gets the activation clip ratio from ActClipGrid(a_clip_min)
  // that minimises its output error on the calibration text (quant/act_clip.h); a_clip unused.
  bool a_clip_search = false;
  float a_clip_min = 0.5f;
  // +seq: sequential calibration against float targets. The calibration stream runs the
  // quantized layers with their activation (and KV) quantization; GPTQ fits each linear to the
  // float model's output on the float model's inputs (the GPTAQ objective, quant/gptq.h's
  // AsymmetricRetarget) and the clip search measures against that same float output.
  bool seq_calib = false;
  // +outliers (quant/outlier_channels.h): per quantized linear, the outlier_channels input
  // channels with the largest calibration |x| leave the w_bits/a_bits path for an
  // outlier_bits weights-and-activations side linear.
  bool outliers = false;
  int outlier_channels = 32;
  // > 0: per linear only those of its outlier_channels whose calibration max |x| is at least
  // this times the median channel's (the profiler's outlier test); a linear may keep none.
  double outlier_ratio = 0;
  int outlier_bits = 8;
  int kv_bits = 16;          // 2..8, or 16: KV cache stays float
  int kv_group = 0;          // 0: one group per head (head_dim)
  // Linears left entirely in float (weights and input). Embeddings are a table lookup and are
  // never quantized. Default as in QuaRot: the lm_head.
  std::vector<Proj> keep_float = {Proj::kLmHead};
  // Mixed precision: the linears of these layers use alt_w_bits / alt_a_bits instead (e.g. the
  // layers most sensitive to 4 bits kept at W8A8). Empty: every layer alike.
  std::vector<int> alt_layers;
  int alt_w_bits = 8, alt_a_bits = 8;
  uint64_t seed = 0;         // for transforms that draw random numbers
  float smooth_alpha = 0.5f;  // SmoothQuant migration strength (recipes with `smooth`)
  float sink_ratio = 64.0f;   // sink-aware: outlier token when row max > ratio x median
  // rotate-learned (quant/learn_rotation.h): Cayley steps, step size on the orthogonal group,
  // sampled residual-stream tokens.
  int learn_steps = 100;
  double learn_lr = 0.05;
  int learn_tokens = 4096;

  WeightQuantSpec weight_spec() const { return {w_bits, w_group, w_sym, clip_search}; }
  ActQuantSpec act_spec() const { return {a_bits, a_clip}; }
  // This config as layer `layer` (-1: the lm_head) uses it: alt bits for an alt layer, and
  // alt_layers cleared (a one-layer slice of the model is quantized with its layer's config).
  QuantConfig ForLayer(int layer) const;
  bool KeepsFloat(Proj p) const;           // named in keep_float
  bool QuantizesWeight(Proj p) const;      // w_bits < 16 and not kept float
  bool SearchesActClip() const { return a_clip_search && a_bits < 16; }
  bool SplitsOutliers() const { return outliers && outlier_channels > 0; }
  // GPTQ, the activation clip search or +outliers' channel choice: calibration states run layer
  // by layer.
  bool Calibrates() const { return (w_bits < 16 && gptq) || SearchesActClip() || SplitsOutliers(); }
  // What needs the calibration text when Calibrates() ("GPTQ"), for error messages.
  std::string CalibrationUser() const;
  // Every setting as (key, value) text, in a fixed order, for printing and JSON
  // (a_clip_search and a_clip_min only when the search is on, seq_calib only when set).
  std::vector<std::pair<std::string, std::string>> Settings() const;
  void Validate() const;  // throws Error naming the flag
  void CheckLayers(int n_layers) const;  // alt_layers name layers of the model (Error naming it)
};

struct LinearReport {
  int layer = -1;  // -1: lm_head
  Proj proj = Proj::kQ;
  std::string format;       // "w4 g128 sym clip-search gptq, a4 clip 1.00" or "float"
  // +act-clip: err(c) over ActClipGrid(QuantConfig::a_clip_min) (quant/act_clip.h)
  std::vector<double> act_clip_errors = {};
  int dead_columns = 0;     // GPTQ: input channels that were always 0
  std::vector<int> outlier_channels = {};  // +outliers: the channels of the side linear
  double gptq_damp = 0;     // GPTQ: the dampening that was used
};
struct QuantizeReport {
  std::vector<LinearReport> linears;
  std::string kv;               // "kv4 per-head asym" or "float"
  int calib_windows = 0;        // GPTQ calibration
  long calib_tokens = 0;
  size_t hidden_state_bytes = 0;  // GPTQ: memory of the kept per-window hidden states
  size_t weight_bytes = 0;      // quantized codes + scales + zero points
  int integer_linears = 0;      // linears on the integer W4A4 kernels (recipe pipeline)
  double seconds = 0;
};

// Quantizes every linear not kept float. With GPTQ the model is processed layer by layer:
// the calibration windows' hidden states (kept in memory: windows x tokens x hidden floats)
// run through the already-quantized layers, then layer l's Hessians are collected in four
// true-sequential stages (q/k/v share kAttnInput, then o, then gate/up share kFfnInput, then
// down), each after the previous stage's linears were quantized. During calibration the
// quantized-so-far layers use quantized weights with FLOAT activations and float KV (as in
// QuaRot/GPTQ): activation quantization is applied only in the returned model.
// `progress` (may be empty) is called with (layers done, total).
// `calib_states` (GPTQ, may be null): the calibration hidden states entering `fp`'s first layer,
// used instead of embedding `calib` and advanced in place through the quantized layers, so a
// model can be quantized one layer-slice at a time (quant/recipe_pipeline.h). Under mpirun they
// are this rank's block of the windows (core/dist.h) and the Hessians are added across ranks in
// window order before each stage is quantized, so every rank quantizes the same weights as one
// process (each rank keeps its block's inputs of the stage until then).
// `float_states` (+seq, with `calib_states`): the same windows' states entering `fp`'s first layer
// in the float model, advanced in place through `fp`'s layers.
Model QuantizeModel(const Model& fp, const QuantConfig& cfg, const std::vector<Window>& calib,
                    QuantizeReport* report = nullptr,
                    const std::function<void(int, int)>& progress = {},
                    std::vector<Mat>* calib_states = nullptr,
                    std::vector<Mat>* float_states = nullptr);

}  // namespace sq
