// --method auto: a recipe chosen by its KL on held-out calibration windows.
#include "quant/auto_recipe.h"

#include <catch2/catch.hpp>

#include "model/random_weights.h"
#include "quant/recipe_comparison.h"
#include "tests/test_util.h"

using namespace sq;

namespace {

struct AutoFixture {
  ModelConfig c = test::SmallConfig();
  Model fp = BuildDenseModel(c, RandomWeights(c, 11));
  // 8 windows: the first 6 fit the candidates, the last 2 score them.
  std::vector<Window> calib = test::RandomWindows(8, 16, c.vocab, 3);
  QuantConfig base;
  AutoFixture() { base.a_bits = 4, base.learn_steps = 5; }
};

std::string BaseOf(const std::string& method) { return method.substr(0, method.find('+')); }

}  // namespace

TEST_CASE("auto is never worse on its scored windows than a fixed base it tried", "[quant][auto]") {
  AutoFixture f;
  const Recipe asked = MakeRecipe("auto", f.base);
  CHECK(asked.auto_select);
  std::vector<std::string> why;
  const Recipe chosen = ResolveRecipe(f.fp, asked, f.calib, why);
  INFO(chosen.name);
  CHECK_FALSE(chosen.auto_select);
  const std::string base = BaseOf(chosen.name);
  CHECK((base == "gptq" || base == "rotate-gptq" || base == "rotate-learned-gptq"));
  REQUIRE(why.size() >= 3);
  CHECK(why.front().rfind("profile: worst linear input", 0) == 0);
  CHECK(why.back().rfind("chose " + chosen.name + ", fitted on all 8", 0) == 0);

  // Measured again, independently of the search: on the held-out windows the choice's KL is
  // at most that of the fixed bases every search starts from.
  CompareRecipesOptions o;
  o.methods = {"gptq", "rotate-gptq"};
  o.base = f.base;
  o.ratio_windows = 0;
  const std::vector<Window> fit(f.calib.begin(), f.calib.begin() + 6);
  const std::vector<Window> scored(f.calib.begin() + 6, f.calib.end());
  const std::vector<RecipeRow> fixed = CompareRecipes(f.fp, fit, scored, o);
  o.methods = {chosen.name};
  o.base.w_sym = chosen.config.w_sym;  // auto may have chosen asymmetric weights
  const double chosen_kl = CompareRecipes(f.fp, fit, scored, o)[0].kld;
  CHECK(chosen_kl <= fixed[0].kld);
  CHECK(chosen_kl <= fixed[1].kld);

  // Deterministic: the same text and flags choose the same recipe.
  std::vector<std::string> again;
  CHECK(ResolveRecipe(f.fp, asked, f.calib, again).name == chosen.name);
  CHECK(again == why);
}

TEST_CASE("auto keeps the user's modifiers in every candidate and does not try them twice",
          "[quant][auto]") {
  AutoFixture f;
  f.base.kv_bits = 4;
  std::vector<std::string> why;
  const Recipe chosen = ResolveRecipe(f.fp, MakeRecipe("auto+kv-rotate", f.base), f.calib, why);
  INFO(chosen.name);
  CHECK(chosen.name.find("+kv-rotate") != std::string::npos);
  CHECK(chosen.name.find("kv-rotate+kv-rotate") == std::string::npos);
  for (const std::string& line : why) CHECK(line.rfind("+kv-rotate:", 0) != 0);
  CHECK(chosen.config.kv_bits == 4);  // the user's flags, not the union's
}

TEST_CASE("auto tries asymmetric weights once and records the choice in the recipe's config",
          "[quant][auto]") {
  AutoFixture f;
  std::vector<std::string> why;
  const Recipe chosen = ResolveRecipe(f.fp, MakeRecipe("auto", f.base), f.calib, why);
  int asym_lines = 0;
  for (const std::string& line : why) {
    if (line.rfind("asymmetric weights (--w-asym): KL ", 0) != 0) continue;
    ++asym_lines;
    CHECK(chosen.config.w_sym == (line.find(": kept") == std::string::npos));
  }
  CHECK(asym_lines == 1);
  CHECK((why.back().find("with asymmetric weights") != std::string::npos) == !chosen.config.w_sym);
  // Asked for by the user: in every candidate, not tried as a choice.
  f.base.w_sym = false;
  std::vector<std::string> asked;
  CHECK_FALSE(ResolveRecipe(f.fp, MakeRecipe("auto", f.base), f.calib, asked).config.w_sym);
  for (const std::string& line : asked) CHECK(line.rfind("asymmetric", 0) != 0);
}

TEST_CASE("auto reads the flags its candidates read and refuses what it cannot do",
          "[quant][auto]") {
  AutoFixture f;
  const Recipe r = MakeRecipe("auto", f.base);
  CHECK(RecipeReadsFlag(r, "learn-steps"));
  CHECK(RecipeReadsFlag(r, "a-clip-min"));
  CHECK(RecipeReadsFlag(r, "gptq-damp"));
  CHECK_FALSE(RecipeReadsFlag(r, "alpha"));         // smoothing is not a candidate
  CHECK_FALSE(RecipeReadsFlag(r, "outlier-bits"));  // only with auto+outliers
  CHECK(RecipeReadsFlag(MakeRecipe("auto+outliers", f.base), "outlier-bits"));
  // Weight-only: no activation modifier is a candidate, so none of their flags is read.
  const Recipe weight_only = MakeRecipe("auto", QuantConfig{});
  CHECK_FALSE(RecipeReadsFlag(weight_only, "a-clip-min"));
  CHECK(RecipeReadsFlag(weight_only, "learn-lr"));
  CHECK_THROWS_WITH(MakeRecipe("auto+bogus", f.base),
                    Catch::Contains("unknown modifier 'bogus' in 'auto+bogus'"));
  CHECK_THROWS_WITH(MakeRecipe("rtn+auto", f.base), Catch::Contains("unknown modifier 'auto'"));
  std::vector<std::string> why;
  const std::vector<Window> one(f.calib.begin(), f.calib.begin() + 1);
  CHECK_THROWS_WITH(ResolveRecipe(f.fp, r, one, why),
                    Catch::Contains("needs at least 2 calibration windows"));
}
