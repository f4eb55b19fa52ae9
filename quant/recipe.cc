#include "quant/recipe.h"

#include <map>
#include <mutex>

#include "core/error.h"

namespace sq {

namespace {

// The built-in recipes. Transform-based recipes (smooth, rotate, ...) are added here once their
// steps are listed in BuiltinTransforms().
std::vector<RecipeDef> BuiltinRecipes() {
  return {
      {"rtn", "round to nearest (with the MSE clip search unless --no-clip-search)", {},
       [](QuantConfig& c) { c.gptq = false; }},
      {"gptq", "GPTQ, layer by layer on the calibration text", {},
       [](QuantConfig& c) { c.gptq = true; }},
  };
}

std::map<std::string, TransformStep> BuiltinTransforms() { return {}; }

struct Registry {
  std::mutex mu;
  std::vector<RecipeDef> recipes = BuiltinRecipes();
  std::map<std::string, TransformStep> transforms = BuiltinTransforms();
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

std::vector<RecipeDef> Recipes() {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  return r.recipes;
}

std::string RecipeNames() {
  std::string s;
  for (const RecipeDef& d : Recipes()) {
    if (!s.empty()) s += ", ";
    s += d.name;
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
  return out;
}

Recipe MakeRecipe(const std::string& method, const QuantConfig& base) {
  for (const RecipeDef& d : Recipes()) {
    if (d.name != method) continue;
    Recipe r{d.name, d.transforms, base};
    if (d.configure) d.configure(r.config);
    r.config.Validate();
    return r;
  }
  throw Error("--method: unknown recipe '" + method + "' (known: " + RecipeNames() + ")");
}

RecipeResult ApplyRecipe(const Model& fp, const Recipe& r, const std::vector<Window>& calib,
                         const std::function<void(int, int)>& progress) {
  RecipeResult out;
  out.transformed = fp;
  for (const std::string& name : r.transforms) {
    TransformStep step;
    {
      Registry& reg = GetRegistry();
      std::lock_guard<std::mutex> lock(reg.mu);
      auto it = reg.transforms.find(name);
      Check(it != reg.transforms.end(),
            "recipe '" + r.name + "': transform '" + name + "' is not registered");
      step = it->second;
    }
    out.transformed = step(out.transformed, r.config, calib, out.log);
  }
  out.quantized = QuantizeModel(out.transformed, r.config, calib, &out.report, progress);
  return out;
}

}  // namespace sq
