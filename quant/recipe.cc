#include "quant/recipe.h"

#include <map>
#include <mutex>

#include "core/error.h"
#include "core/strings.h"
#include "quant/transform_steps.h"

namespace sq {

namespace {

// The built-in recipes. Transform-based recipes (smooth, rotate, ...) are added here once their
// steps are listed in BuiltinTransforms().
std::vector<RecipeDef> BuiltinRecipes() {
  std::vector<RecipeDef> r = {
      {"rtn", "round to nearest (with the MSE clip search unless --no-clip-search)", {},
       [](QuantConfig& c) { c.gptq = false; }},
      {"gptq", "GPTQ, layer by layer on the calibration text", {},
       [](QuantConfig& c) { c.gptq = true; }},
  };
  for (RecipeDef& d : OutlierRecipes()) r.push_back(std::move(d));
  return r;
}

std::map<std::string, TransformStep> BuiltinTransforms() { return OutlierTransformSteps(); }

struct Registry {
  std::mutex mu;
  std::vector<RecipeDef> recipes = BuiltinRecipes();
  std::map<std::string, TransformStep> transforms = BuiltinTransforms();
  std::map<std::string, PostQuantStep> post = OutlierPostSteps();
};

Registry& GetRegistry() {
  static Registry r;
  return r;
}

}  // namespace

void RegisterRecipe(RecipeDef def) {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  for (RecipeDef& d : r.recipes) {
    if (d.name == def.name) {
      d = std::move(def);
      return;
    }
  }
  r.recipes.push_back(std::move(def));
}

void RegisterTransform(const std::string& name, TransformStep step) {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.transforms[name] = std::move(step);
}

void RegisterPostStep(const std::string& name, PostQuantStep step) {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.post[name] = std::move(step);
}

std::vector<RecipeDef> Recipes() {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  return r.recipes;
}

namespace {

template <typename Step>
Step FindStep(const std::map<std::string, Step>& steps, const std::string& name,
              const std::string& recipe, const char* kind) {
  auto it = steps.find(name);
  Check(it != steps.end(),
        "recipe '" + recipe + "': " + kind + " '" + name + "' is not registered");
  return it->second;
}

}  // namespace

TransformStep FindTransform(const std::string& name, const std::string& recipe) {
  Registry& reg = GetRegistry();
  std::lock_guard<std::mutex> lock(reg.mu);
  return FindStep(reg.transforms, name, recipe, "transform");
}

PostQuantStep FindPostStep(const std::string& name, const std::string& recipe) {
  Registry& reg = GetRegistry();
  std::lock_guard<std::mutex> lock(reg.mu);
  return FindStep(reg.post, name, recipe, "post step");
}

std::string RecipeNames() {
  std::string s;
  for (const RecipeDef& d : Recipes()) {
    if (!s.empty()) s += ", ";
    s += (d.modifier ? "+" : "") + d.name;
  }
  return s;
}

std::vector<std::pair<std::string, std::string>> Recipe::Settings() const {
  std::string t;
  for (const std::string& s : transforms) {
    if (!t.empty()) t += ',';
    t += s;
  }
  std::vector<std::pair<std::string, std::string>> out = {{"method", name},
                                                          {"transforms", t.empty() ? "none" : t}};
  for (auto& kv : config.Settings()) out.push_back(std::move(kv));
  for (const std::string& s : transforms) {
    if (s == "smooth") out.push_back({"smooth_alpha", std::to_string(config.smooth_alpha)});
  }
  for (const std::string& s : post) {
    out.push_back({"post", s});
    if (s == "sink-aware") out.push_back({"sink_ratio", std::to_string(config.sink_ratio)});
  }
  return out;
}

Recipe MakeRecipe(const std::string& method, const QuantConfig& base) {
  const std::vector<std::string> parts = SplitList(method, '+');  // rotate, sink-aware
  const std::vector<RecipeDef> defs = Recipes();
  auto find = [&](const std::string& name, bool modifier) -> const RecipeDef& {
    for (const RecipeDef& d : defs) {
      if (d.name == name && d.modifier == modifier) return d;
    }
    throw Error("--method: unknown " + std::string(modifier ? "modifier" : "recipe") + " '" +
                name + "' in '" + method + "' (known: " + RecipeNames() + ")");
  };
  const RecipeDef& d = find(parts[0], false);
  Recipe r{method, d.transforms, base, d.post};
  if (d.configure) d.configure(r.config);
  for (size_t i = 1; i < parts.size(); ++i) {
    const RecipeDef& m = find(parts[i], true);
    r.transforms.insert(r.transforms.end(), m.transforms.begin(), m.transforms.end());
    r.post.insert(r.post.end(), m.post.begin(), m.post.end());
    if (m.configure) m.configure(r.config);
  }
  r.config.Validate();
  return r;
}

RecipeResult ApplyRecipe(const Model& fp, const Recipe& r, const std::vector<Window>& calib,
                         const std::function<void(int, int)>& progress) {
  RecipeResult out;
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

}  // namespace sq
