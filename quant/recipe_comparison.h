// Which recipe loses least on this checkpoint? Runs every named method (recipes of
// quant/recipe.h, or "fp" for the float model itself) with the same quantization flags over
// the same evaluation windows and reports one row per method.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "calib/dataset.h"
#include "model/model.h"
#include "quant/quantize_model.h"

namespace sq {

struct RecipeRow {
  std::string method;
  BitSetting bit_setting{16, 16, 16};  // its Name() is the row's "bits" ("W16A16KV16" for fp)
  double ppl = 0, ppl_stderr = 0, delta_ppl = 0;
  double kld = 0, kld_p99 = 0, top1 = 1;
  long tokens = 0;
  // Worst linear input of the transformed float model (what the quantized linears read).
  double worst_ratio = 0;  // max |x| / median |x| over the whole input
  std::string worst_site;
  double worst_token_ratio = 0;  // max over tokens of max |x_t| / median |x_t|
  std::string worst_token_site;
  double quantize_seconds = 0, eval_seconds = 0;
  // The linears' weights (decoder layers and lm_head; embeddings excluded): quantized codes,
  // scales and zero points, plus 16 bits for every weight left in float.
  double weight_bytes = 0, bits_per_weight = 16;
  // CompareBitSettings: no other row costs at most as much (weight bytes, activation bits and
  // KV bits, each) with a lower KL.
  bool pareto = false;
  double act_bits = 16;  // activation bits, the mean over layers (mixed precision)
  std::string mixed;     // mixed precision: which layers run at higher precision, and why
  std::string sink;      // sink-aware recipes: how many rows stayed float
  std::vector<std::pair<std::string, std::string>> settings;
  std::vector<std::string> log;  // what each transform did
};

struct CompareRecipesOptions {
  std::vector<std::string> methods;  // "fp", "rtn", "rotate+sink-aware", ...
  QuantConfig base;                  // the user's flags (bits, groups, alpha, seed, ...)
  int ratio_windows = 4;             // evaluation windows for the activation ratio
  // Evaluate W4A4 linears on the integer kernels (bit-identical to fake-quant, faster).
  bool integer_kernels = true;
  std::function<void(const std::string& method, int, int)> progress;  // may be empty
};

// Throws Error naming an unknown method before anything runs.
std::vector<RecipeRow> CompareRecipes(const Model& fp, const std::vector<Window>& calib,
                                      const std::vector<Window>& eval,
                                      const CompareRecipesOptions& opt);

// Every method of `opt.methods` at every bit setting (the float row once, first), each row's
// `pareto` set as RecipeRow says. A setting with sensitive_layers = n keeps at W8A8 the n layers
// whose quantization alone costs most: layer l's sensitivity is the KL, on the calibration
// windows, of an RTN model with layer l at the setting's bits and every other layer at W8A8
// (one probe per layer, shared by the methods). Throws Error naming an unknown method or a
// setting the model cannot take before anything long runs.
std::vector<RecipeRow> CompareBitSettings(const Model& fp, const std::vector<Window>& calib,
                                          const std::vector<Window>& eval,
                                          const CompareRecipesOptions& opt,
                                          const std::vector<BitSetting>& settings);

// Whether `a` needs no more weight bytes, (mean) activation bits and KV bits than `b`.
bool CostsAtMost(const RecipeRow& a, const RecipeRow& b);

// A markdown table of the rows (the same columns as the printed table).
std::string RecipeTableMarkdown(const std::vector<RecipeRow>& rows);

}  // namespace sq
