// The outlier-handling transforms as recipe steps, and the recipes built from them (the
// registry in quant/recipe.cc lists these beside rtn and gptq):
//   smooth         SmoothQuant (alpha = QuantConfig::smooth_alpha) on the calibration text, RTN
//   rotate         fold norms, Hadamard rotation (seed = QuantConfig::seed), RTN
//   rotate-gptq    fold norms, Hadamard rotation, GPTQ
//   smooth-rotate  SmoothQuant, fold norms, Hadamard rotation, RTN
//   +sink-aware    modifier for any recipe: after quantization, position 0 and outlier tokens
//                  (row max > QuantConfig::sink_ratio x median) keep float activations and KV
#pragma once

#include <map>
#include <string>
#include <vector>

#include "quant/recipe.h"
#include "quant/smooth.h"

namespace sq {

std::map<std::string, TransformStep> OutlierTransformSteps();  // fold-norms, smooth, rotate

// The smooth step with statistics gathered elsewhere (per layer, by the layer pipeline);
// `calib_windows` only feeds the log line.
Model SmoothWithStats(const Model& m, const QuantConfig& cfg, const ChannelAbsMax& stats,
                      size_t calib_windows, std::vector<std::string>& log);
std::map<std::string, PostQuantStep> OutlierPostSteps();       // sink-aware
std::vector<RecipeDef> OutlierRecipes();  // the recipes above, then the sink-aware modifier

}  // namespace sq
