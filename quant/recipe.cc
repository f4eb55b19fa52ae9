#include "quant/recipe.h"

#include <string_view>

#include "core/error.h"
#include "core/strings.h"
#include "quant/auto_recipe.h"
#include "quant/recipe_steps.h"

namespace sq {

namespace {

// A step names what it runs (before quantization or after it), the settings it reads and the
// command-line flags that set them.
struct StepDef {
  std::string_view name;
  TransformStep transform;  // float model -> float model, before quantization; or null
  PostQuantStep post;       // on the quantized model; or null
  StepSettings settings;    // or null: it reads nothing beyond QuantConfig::Settings()
  std::string_view flags = "";  // comma-separated, without dashes
};

constexpr StepDef kSteps[] = {
    {"fold-norms", FoldNormsStep, nullptr, nullptr},
    {"smooth", SmoothStep, nullptr, SmoothSettings, "alpha"},
    {"rotate", RotateStep, nullptr, nullptr},
    {"rotate-learned", RotateLearnedStep, nullptr, LearnRotationSettings,
     "learn-steps,learn-lr,learn-tokens"},
    {"kv-rotate", KvRotateStep, nullptr, nullptr},
    {"sink-aware", nullptr, SinkAwareStep, SinkAwareSettings, "sink-ratio"},
};

// Flags read by a quantizer setting rather than by a step: GPTQ's, and +act-clip's floor.
constexpr std::string_view kGptqFlags = "act-order,gptq-block,gptq-damp";
constexpr std::string_view kActClipFlags = "a-clip-min";
constexpr std::string_view kOutlierFlags = "outlier-channels,outlier-ratio,outlier-bits";

// What a recipe sets in the QuantConfig: the quantizer (a modifier leaves the base's).
enum class Quantizer { kBase, kRtn, kGptq };

struct RecipeDef {
  std::string_view name;
  std::string_view summary;
  std::string_view steps;  // step names, comma-separated, applied in order
  Quantizer quantizer;
  // A modifier combines with any recipe as "base+name" (its steps are appended to the base's);
  // it is not a recipe on its own.
  bool modifier = false;
  // What it sets in the QuantConfig beyond the quantizer (recorded by QuantConfig::Settings()),
  // or null.
  void (*configure)(QuantConfig&) = nullptr;
};

void SearchActClip(QuantConfig& c) { c.a_clip_search = true; }
void SequentialCalibration(QuantConfig& c) { c.seq_calib = true; }
void SplitOutliers(QuantConfig& c) { c.outliers = true; }

constexpr RecipeDef kRecipes[] = {
    {"rtn", "round to nearest (with the MSE clip search unless --no-clip-search)", "",
     Quantizer::kRtn},
    {"gptq", "GPTQ, layer by layer on the calibration text", "", Quantizer::kGptq},
    {"smooth", "SmoothQuant (alpha --alpha) on the calibration text, then RTN", "smooth",
     Quantizer::kRtn},
    {"rotate", "fold norms, Hadamard rotation (QuaRot), then RTN", "fold-norms,rotate",
     Quantizer::kRtn},
    {"rotate-gptq", "fold norms, Hadamard rotation, then GPTQ", "fold-norms,rotate",
     Quantizer::kGptq},
    {"rotate-learned",
     "fold norms, rotation learned on the calibration text (Cayley descent on the kurtosis of the "
     "linears' residual-stream inputs from rotate's Hadamard, --learn-steps/-lr/-tokens), then RTN",
     "fold-norms,rotate-learned", Quantizer::kRtn},
    {"rotate-learned-gptq", "fold norms, learned rotation (as rotate-learned), then GPTQ",
     "fold-norms,rotate-learned", Quantizer::kGptq},
    {"smooth-rotate", "SmoothQuant, fold norms, Hadamard rotation, then RTN",
     "smooth,fold-norms,rotate", Quantizer::kRtn},
    {"kv-rotate",
     "modifier (rotate+kv-rotate, ...): rotated KV cache, an online per-head Hadamard on queries "
     "and keys after RoPE (QuaRot); values rotated per head in v/o",
     "kv-rotate", Quantizer::kBase, /*modifier=*/true},
    {"sink-aware",
     "modifier (rtn+sink-aware, ...): position 0 and outlier tokens keep float activations and KV",
     "sink-aware", Quantizer::kBase, /*modifier=*/true},
    {"act-clip",
     "modifier (rotate-gptq+act-clip, ...): per linear, the activation clip ratio (1.00 down to "
     "--a-clip-min by 0.05) that minimises its output error on the calibration text",
     "", Quantizer::kBase, /*modifier=*/true, SearchActClip},
    {"seq",
     "modifier (rotate-gptq+seq, ...): calibration states run with activation and KV "
     "quantization; GPTQ and +act-clip fit the float model's outputs (GPTAQ's objective)",
     "", Quantizer::kBase, /*modifier=*/true, SequentialCalibration},
    {"outliers",
     "modifier (rotate-gptq+outliers, ...): per linear, the --outlier-channels input channels "
     "with the largest calibration |x| kept at --outlier-bits weights and activations in a side "
     "linear (Atom, QUIK); the rest as the recipe quantizes it. --outlier-ratio R: per linear "
     "only those at least R times its median channel's |x| (the profile's test; 20 there)",
     "", Quantizer::kBase, /*modifier=*/true, SplitOutliers},
};

const StepDef* FindStep(std::string_view name) {
  for (const StepDef& d : kSteps) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

// The step of `name` with a function of the `kind` asked for, or an Error naming the recipe.
const StepDef& RequireStep(const std::string& name, const std::string& recipe, bool post) {
  const StepDef* d = FindStep(name);
  Check(d && (post ? d->post != nullptr : d->transform != nullptr),
        "recipe '" + recipe + "': " + (post ? "post step" : "transform") + " '" + name +
            "' is not registered");
  return *d;
}

void AddStepSettings(const std::string& name, const QuantConfig& c, SettingList& out) {
  if (const StepDef* d = FindStep(name); d && d->settings) d->settings(c, out);
}

}  // namespace

TransformStep FindTransform(const std::string& name, const std::string& recipe) {
  return RequireStep(name, recipe, /*post=*/false).transform;
}

PostQuantStep FindPostStep(const std::string& name, const std::string& recipe) {
  return RequireStep(name, recipe, /*post=*/true).post;
}

std::string RecipeNames() {
  std::string s;
  for (const RecipeDef& d : kRecipes) {
    if (!s.empty()) s += ", ";
    if (d.modifier) s += '+';
    s += d.name;
  }
  return s + ", auto";
}

std::vector<std::string> RecipeOnlyFlags() {
  std::vector<std::string> out = SplitList(std::string(kGptqFlags), ',');
  out.push_back(std::string(kActClipFlags));
  for (const std::string& f : SplitList(std::string(kOutlierFlags), ',')) out.push_back(f);
  for (const StepDef& d : kSteps) {
    for (const std::string& f : SplitList(std::string(d.flags), ',')) {
      if (!f.empty()) out.push_back(f);
    }
  }
  return out;
}

bool RecipeReadsFlag(const Recipe& r, const std::string& flag) {
  auto listed = [&](std::string_view list) {
    for (const std::string& f : SplitList(std::string(list), ',')) {
      if (f == flag) return true;
    }
    return false;
  };
  if (r.config.gptq && listed(kGptqFlags)) return true;
  if (r.config.a_clip_search && listed(kActClipFlags)) return true;
  if (r.config.outliers && listed(kOutlierFlags)) return true;
  for (const auto* steps : {&r.transforms, &r.post}) {
    for (const std::string& s : *steps) {
      if (const StepDef* d = FindStep(s); d && listed(d->flags)) return true;
    }
  }
  return false;
}

SettingList Recipe::Settings() const {
  std::string t;
  for (const std::string& s : transforms) {
    if (!t.empty()) t += ',';
    t += s;
  }
  SettingList out = {{"method", name}, {"transforms", t.empty() ? "none" : t}};
  for (auto& kv : config.Settings()) out.push_back(std::move(kv));
  for (const std::string& s : transforms) AddStepSettings(s, config, out);
  for (const std::string& s : post) {
    out.push_back({"post", s});
    AddStepSettings(s, config, out);
  }
  return out;
}

namespace {

// MakeRecipe without the final validation of its settings. Errors name `shown` (the method the
// user wrote; auto builds another).
Recipe BuildRecipe(const std::string& method, const QuantConfig& base,
                   const std::string& shown = "") {
  const std::vector<std::string> parts = SplitList(method, '+');  // rotate, sink-aware
  auto find = [&](const std::string& name, bool modifier) -> const RecipeDef& {
    for (const RecipeDef& d : kRecipes) {
      if (d.name == name && d.modifier == modifier) return d;
    }
    throw Error("--method: unknown " + std::string(modifier ? "modifier" : "recipe") + " '" + name +
                "' in '" + (shown.empty() ? method : shown) + "' (known: " + RecipeNames() + ")");
  };
  Recipe r;
  r.name = method;
  r.config = base;
  for (size_t i = 0; i < parts.size(); ++i) {
    const RecipeDef& d = find(parts[i], /*modifier=*/i > 0);
    if (d.quantizer != Quantizer::kBase) r.config.gptq = d.quantizer == Quantizer::kGptq;
    if (d.configure) d.configure(r.config);
    if (d.steps.empty()) continue;
    for (const std::string& step : SplitList(std::string(d.steps), ',')) {
      const StepDef* s = FindStep(step);
      (s && s->post ? r.post : r.transforms).push_back(step);
    }
  }
  return r;
}

}  // namespace

Recipe MakeRecipe(const std::string& method, const QuantConfig& base) {
  const bool automatic = IsAutoMethod(method);
  Recipe r = BuildRecipe(automatic ? AutoUnionMethod(method, base) : method, base, method);
  if (automatic) r.name = method, r.auto_select = true, r.base_config = base;
  r.config.Validate();
  return r;
}

RecipeResult ApplyRecipe(const Model& fp, const Recipe& chosen, const std::vector<Window>& calib,
                         const std::function<void(int, int)>& progress) {
  RecipeResult out;
  const Recipe r = ResolveRecipe(fp, chosen, calib, out.log);
  out.transformed = fp;
  for (const std::string& name : r.transforms) {
    out.transformed = FindTransform(name, r.name)(out.transformed, r.config, calib, out.log);
  }
  out.quantized = QuantizeModel(out.transformed, r.config, calib, &out.report, progress);
  for (const std::string& name : r.post) {
    out.quantized = FindPostStep(name, r.name)(out.quantized, r.config, out.log);
  }
  return out;
}

std::string RecipesReading(const std::string& flag) {
  const bool by_rtn = RecipeReadsFlag(BuildRecipe("rtn", QuantConfig{}), flag);
  std::string s;
  for (const RecipeDef& d : kRecipes) {
    std::string name(d.name);
    if (d.modifier) name.insert(0, 1, '+');
    const Recipe r =
        BuildRecipe(d.modifier ? std::string("rtn").append(name) : name, QuantConfig{});
    if (!RecipeReadsFlag(r, flag) || (d.modifier && by_rtn)) continue;
    if (!s.empty()) s += ", ";
    s += name;
  }
  return s;
}

}  // namespace sq
