// Recipes: a named, recorded way to turn a float model into a quantized one. A recipe is data
// (torchao's split: WHAT = the QuantConfig, HOW = the transform steps and the quantizer, WHERE =
// QuantConfig::keep_float). `--method NAME` picks one; every setting it used is listed by
// Settings(), so a number in a table can be reproduced with one `sinkquant eval`.
//
// The recipes and their steps are two constant tables in recipe.cc (llama.cpp's
// QUANT_OPTIONS is the model): add a recipe or a step there.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "calib/dataset.h"
#include "model/model.h"
#include "quant/quantize_model.h"

namespace sq {

// A transform step: float model -> float model (exact in float or not: its summary says). It
// appends a one-line description of what it did (with its settings) to `log`.
using TransformStep = Model (*)(const Model& fp, const QuantConfig& cfg,
                                const std::vector<Window>& calib, std::vector<std::string>& log);

// A step on the quantized model, run after QuantizeModel (e.g. sink-aware activations, which
// wrap the quantized linears and the KV quantizer). Appends a description to `log`.
using PostQuantStep = Model (*)(const Model& quantized, const QuantConfig& cfg,
                                std::vector<std::string>& log);

// (key, value) settings as printed and written to JSON, in a fixed order.
using SettingList = std::vector<std::pair<std::string, std::string>>;
// Appends the QuantConfig fields a step reads beyond QuantConfig::Settings()'s.
using StepSettings = void (*)(const QuantConfig& cfg, SettingList& out);

struct Recipe {
  std::string name;
  std::vector<std::string> transforms;
  QuantConfig config;
  std::vector<std::string> post;
  // `--method auto` (quant/auto_recipe.h): chosen on the calibration text by ResolveRecipe from
  // the user's flags in base_config; until then transforms, config and post are the union of
  // the candidates' (for flag checks and validation).
  bool auto_select = false;
  QuantConfig base_config;
  // ("method", name), ("transforms", "a,b" or "none"), then QuantConfig::Settings(), then what
  // each step adds (smooth_alpha, ("post", name), sink_ratio).
  SettingList Settings() const;
};

// The step of that name; throws Error naming `recipe` when there is none of that kind.
TransformStep FindTransform(const std::string& name, const std::string& recipe);
PostQuantStep FindPostStep(const std::string& name, const std::string& recipe);
std::string RecipeNames();         // "rtn, gptq, ..., +sink-aware" for messages

// `base` holds the user's flags; the recipe's own settings are applied on top. `method` is a
// recipe name optionally followed by modifiers ("rotate+sink-aware"), or "auto" (optionally
// with modifiers), which ResolveRecipe turns into one. Throws Error listing the known names for
// an unknown method.
Recipe MakeRecipe(const std::string& method, const QuantConfig& base);

// The flags only some recipes read (--alpha by smooth, --learn-* by the learned rotation,
// --sink-ratio by +sink-aware, GPTQ's and +act-clip's settings), without their dashes; whether
// `r` reads `flag`; and the recipes and modifiers that do ("smooth, smooth-rotate"). A command
// refuses such a flag when none of its methods reads it (cli/quant_flags.h).
std::vector<std::string> RecipeOnlyFlags();
bool RecipeReadsFlag(const Recipe& r, const std::string& flag);
std::string RecipesReading(const std::string& flag);

struct RecipeResult {
  Model transformed;               // float model after the transforms (SQNR reference)
  Model quantized;
  QuantizeReport report;
  std::vector<std::string> log;    // what each transform did
};

// Resolves `r` (auto), runs the transforms, then QuantizeModel on the transformed model, then the
// post steps.
RecipeResult ApplyRecipe(const Model& fp, const Recipe& r, const std::vector<Window>& calib,
                         const std::function<void(int, int)>& progress = {});

}  // namespace sq
