// A recipe applied one layer at a time, for checkpoints whose transformed float copy would not
// fit in memory. Model-level tensors (embedding, final norm, lm_head) are transformed once up
// front; then, driven by ForwardLayerMajor's hooks, layer l is read from the mapped checkpoint,
// transformed (the recipe's steps run on a one-layer slice of the model), calibrated on the
// calibration windows' hidden states at layer l (SmoothQuant maxima from the float stream, GPTQ
// Hessians and the +act-clip inputs from the weight-quantized stream, GPTQ's true-sequential
// order), quantized, run by
// the evaluation streams, and dropped. Resident memory is one transformed layer, the hidden
// states and the model-level tensors instead of whole-model float copies.
//
// rotate-learned needs its residual Q before layer 0 is transformed: a first pass runs the
// calibration windows through every layer (each read once and released) to sample the inputs
// it learns from, the same samples ApplyRecipe's ObserveLayerMajor takes.
//
// Every step does the arithmetic ApplyRecipe does for that layer, so the two give the same
// quantized model bit for bit (tests/quant/recipe_pipeline_test.cc).
// Under mpirun each rank calibrates on its block of the calibration windows; the SmoothQuant
// maxima and GPTQ Hessians are combined across ranks (core/dist.h) before a layer is
// transformed and quantized, so every rank holds the same quantized layer.
#pragma once

#include <memory>
#include <functional>
#include <string>
#include <vector>

#include "calib/dataset.h"
#include "model/layer_major.h"
#include "quant/learn_rotation.h"
#include "quant/recipe.h"
#include "quant/sink_aware.h"
#include "quant/smooth.h"

namespace sq {

class RecipePipeline {
 public:
  // `fp` must outlive the pipeline. `integer_kernels`: quantized linears run the integer W4A4
  // kernels (bit-identical to fake-quant). Throws Error for a recipe it cannot stream.
  RecipePipeline(const Model& fp, const Recipe& recipe, const std::vector<Window>& calib,
                 bool integer_kernels);

  // The float model after the transforms and the quantized model. Between the hooks'
  // before_layer(l) and after_layer(l) their layer l is present; other layers are empty.
  const Model& transformed() const { return t_; }
  // The recipe it runs: the one given, or what `--method auto` chose (its reasons in log()).
  const Recipe& recipe() const { return recipe_; }
  const Model& quantized() const { return q_; }
  LayerMajorHooks Hooks();
  // Keep each quantized layer after its pass (for an export): the packed weights, norms and
  // online rotations stay, the float slice is dropped. Call before the first layer.
  void KeepQuantizedLayers() { keep_layers_ = true; }
  // Prepares and releases every layer without running anything else (e.g. an export with no
  // evaluation text); GPTQ's calibration still runs inside. `progress(done, total)` after each
  // layer.
  void BuildAll(const std::function<void(int, int)>& progress = {});

  const std::vector<std::string>& log() const { return log_; }
  QuantizeReport report() const;  // seconds = seconds()
  double seconds() const { return seconds_; }  // time spent preparing layers (not running them)
  std::shared_ptr<SinkCounts> sink_counts() const { return sink_counts_; }

 private:
  void PrepareLayer(int l);
  void ReleaseLayer(int l);
  void PrepareHead();
  bool HeadNeedsCalibration() const;
  std::vector<Mat>* FloatStates() {  // +seq's float targets, or null
    return calibrates_ && recipe_.config.seq_calib ? &calib_tf_ : nullptr;
  }
  Model LayerSlice(int l) const;   // fp's layer l as a one-layer model
  // The transforms before `upto` of the recipe, on one layer's slice (`log` gets their lines).
  Model TransformSlice(Model cur, const std::string& upto, const ChannelAbsMax& stats,
                       std::vector<std::string>& log) const;
  // rotate-learned's samples, layer by layer over every calibration window (each rank all of
  // them, so every rank learns the same Q), through the transforms before it.
  Mat SampleResidualInputs() const;
  Model QuantizeSlice(const Model& t, int layer, std::vector<Mat>* states,
                      std::vector<Mat>* float_states);
  void Install(Model& shell, Model& slice, int l, std::vector<std::shared_ptr<const void>>& keep);
  void CompactQuantizedLayer(int l);

  const Model& fp_;
  Recipe recipe_;
  const std::vector<Window>& calib_;
  bool integer_kernels_;
  bool keep_layers_ = false;
  Model head_t_;                    // model-level tensors after the transforms (no layers)
  Model t_, q_;                     // the shells the streams run
  std::vector<std::shared_ptr<const void>> t_layer_, q_layer_;  // storage of the current layer
  // Calibration states of this rank's block of the windows (all of them in one process).
  bool smooth_ = false, calibrates_ = false;
  std::vector<Mat> calib_fp_;       // calibration states in the float model (smooth statistics)
  std::vector<Mat> calib_tf_;       // ... in the transformed float model (+seq's targets)
  std::vector<Mat> calib_q_;        // ... in the transformed, weight-quantized model (GPTQ and
                                    // the activation clip search: QuantConfig::Calibrates())
  LearnedRotation learned_;         // rotate-learned's Q, learned once for every layer
  std::vector<std::string> log_;
  QuantizeReport report_;
  std::shared_ptr<SinkCounts> sink_counts_;
  double seconds_ = 0;
};

}  // namespace sq
