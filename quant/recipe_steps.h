// The outlier-handling transforms as recipe steps (quant/recipe.cc's tables name them):
//   fold-norms  norm weights into the linears that read them
//   smooth      SmoothQuant (alpha = QuantConfig::smooth_alpha) on the calibration text
//   rotate      Hadamard rotation (seed = QuantConfig::seed)
//   rotate-learned  rotate with the residual stream's Q learned on the calibration text
//               (quant/learn_rotation.h; QuantConfig::learn_*), starting from rotate's
//   kv-rotate   online per-head Hadamard of queries and keys after RoPE, values folded (seed)
//   sink-aware  after quantization: position 0 and outlier tokens (row max >
//               QuantConfig::sink_ratio x median) keep float activations and KV
#pragma once

#include <string>
#include <vector>

#include "quant/learn_rotation.h"
#include "quant/recipe.h"
#include "quant/smooth.h"

namespace sq {

Model FoldNormsStep(const Model& m, const QuantConfig& cfg, const std::vector<Window>& calib,
                    std::vector<std::string>& log);
Model SmoothStep(const Model& m, const QuantConfig& cfg, const std::vector<Window>& calib,
                 std::vector<std::string>& log);
Model RotateStep(const Model& m, const QuantConfig& cfg, const std::vector<Window>& calib,
                 std::vector<std::string>& log);
Model RotateLearnedStep(const Model& m, const QuantConfig& cfg, const std::vector<Window>& calib,
                        std::vector<std::string>& log);
Model KvRotateStep(const Model& m, const QuantConfig& cfg, const std::vector<Window>& calib,
                   std::vector<std::string>& log);
Model SinkAwareStep(const Model& q, const QuantConfig& cfg, std::vector<std::string>& log);

// The settings each step reads, for Recipe::Settings() ("smooth_alpha", "sink_ratio").
void SmoothSettings(const QuantConfig& cfg, SettingList& out);
void SinkAwareSettings(const QuantConfig& cfg, SettingList& out);
void LearnRotationSettings(const QuantConfig& cfg, SettingList& out);

// The smooth step with statistics gathered elsewhere (per layer, by the layer pipeline);
// `calib_windows` only feeds the log line.
Model SmoothWithStats(const Model& m, const QuantConfig& cfg, const ChannelAbsMax& stats,
                      size_t calib_windows, std::vector<std::string>& log);

// rotate-learned's parts: its options, learning from samples collected elsewhere (the layer
// pipeline samples layer by layer), and the rotation with a learned Q.
LearnRotationOptions LearnOptions(const QuantConfig& cfg);
LearnedRotation LearnAndLog(const Mat& samples, const QuantConfig& cfg,
                            std::vector<std::string>& log);
Model RotateWithLearned(const Model& m, const QuantConfig& cfg, const LearnedRotation& learned,
                        std::vector<std::string>& log);

}  // namespace sq
