// `--method auto`: the recipe chosen for this checkpoint by measurement, not by a table. The
// calibration windows are split (the first three quarters fit, the rest score); every
// candidate is quantized on the fit windows and scored by its KL to the float model on the
// scored ones, so the choice never sees the evaluation text. The profile of the float model
// (its worst linear input, gated norms) decides which candidates are worth trying and is
// printed with the choice.
//
// The search: the base recipes (gptq, rotate-gptq, rotate-learned-gptq), the best kept; then
// asymmetric weights (a zero point per row or group, as --w-asym; unless the user asked for
// them) and each modifier the bit setting can use (+act-clip, +seq with quantized activations
// or KV, +kv-rotate with a quantized KV cache), added in turn and kept only when it lowers the KL
// by more than kAutoNoise. Modifiers the user appends ("auto+outliers") are in every candidate.
// The chosen recipe (its config says whether the weights are asymmetric) is then fitted on all
// the calibration windows.
#pragma once

#include <string>
#include <vector>

#include "calib/dataset.h"
#include "model/model.h"
#include "quant/recipe.h"

namespace sq {

// A modifier is kept when it lowers the scored KL by more than this fraction.
inline constexpr double kAutoNoise = 0.01;

// "auto" or "auto+<modifiers>".
bool IsAutoMethod(const std::string& method);

// What MakeRecipe builds for an auto method before the choice: every candidate's steps and
// settings together at the user's bit setting ("rotate-learned-gptq+act-clip+seq+kv-rotate"
// for W4A4KV4, then the user's modifiers), so the flags any candidate reads are accepted and
// its settings validated up front.
std::string AutoUnionMethod(const std::string& method, const QuantConfig& base);

// The concrete recipe for `r` (r itself unless r.auto_select), with one line per decision
// appended to `why`. Throws Error when the calibration text has fewer than 2 windows.
Recipe ResolveRecipe(const Model& fp, const Recipe& r, const std::vector<Window>& calib,
                     std::vector<std::string>& why);

}  // namespace sq
