#include "quant/recipe_comparison.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "calib/quant_error.h"
#include "core/error.h"
#include "quant/input_ratio.h"
#include "quant/integer_linear.h"
#include "quant/recipe.h"
#include "quant/recipe_pipeline.h"
#include "quant/sink_aware.h"

namespace sq {

namespace {

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string Bits(const QuantConfig& c) {
  return "W" + std::to_string(c.w_bits) + "A" + std::to_string(c.a_bits) + "KV" +
         std::to_string(c.kv_bits);
}

void SetWorst(RecipeRow& row, const std::vector<InputRatio>& r) {
  const InputRatio w = WorstInput(r);
  row.worst_ratio = w.ratio();
  row.worst_site = w.Name();
  const InputRatio& t = *std::max_element(r.begin(), r.end(), [](const auto& a, const auto& b) {
    return a.token_ratio < b.token_ratio;
  });
  row.worst_token_ratio = t.token_ratio;
  row.worst_token_site = t.Name();
}

}  // namespace

std::vector<RecipeRow> CompareRecipes(const Model& fp, const std::vector<Window>& calib,
                                      const std::vector<Window>& eval,
                                      const CompareRecipesOptions& opt) {
  Check(!opt.methods.empty(), "--methods: no methods given");
  Check(!eval.empty(), "compare: no evaluation windows");
  std::vector<Recipe> recipes;  // validate every name before the long runs
  for (const std::string& m : opt.methods) {
    if (m != "fp") recipes.push_back(MakeRecipe(m, opt.base));
  }
  std::vector<RecipeRow> rows;
  double fp_ppl = 0;
  size_t next = 0;
  for (const std::string& m : opt.methods) {
    auto progress = [&](int done, int total) {
      if (opt.progress) opt.progress(m, done, total);
    };
    RecipeRow row;
    row.method = m;
    if (m == "fp") {
      const auto t0 = std::chrono::steady_clock::now();
      const PplResult r = EvaluatePerplexity(fp, eval, nullptr, {}, progress);
      row.bits = "W16A16KV16";
      row.ppl = r.ppl;
      row.ppl_stderr = r.ppl_stderr;
      row.tokens = r.tokens;
      row.eval_seconds = Seconds(t0);
      SetWorst(row, LinearInputRatios(fp, eval, opt.ratio_windows));
      fp_ppl = r.ppl;
      rows.push_back(row);
      continue;
    }
    const Recipe& recipe = recipes[next++];
    const auto t0 = std::chrono::steady_clock::now();
    // Layer by layer: the recipe's transformed and quantized layers exist only while every
    // stream runs through them (quant/recipe_pipeline.h).
    RecipePipeline pipe(fp, recipe, calib, opt.integer_kernels);
    row.bits = Bits(recipe.config);
    row.settings = recipe.Settings();
    row.log = pipe.log();
    InputRatioObserver ratios(pipe.transformed());
    CompareOptions co;
    co.sqnr_windows = 0;
    co.progress = progress;
    co.hooks = pipe.Hooks();
    co.extra_streams = {{&pipe.transformed(), &ratios, opt.ratio_windows > 0 ? opt.ratio_windows : -1, false}};
    const CompareResult c = EvalQuantized(fp, pipe.quantized(), eval, co);
    SetWorst(row, ratios.Results());
    row.quantize_seconds = pipe.seconds();
    row.eval_seconds = Seconds(t0) - row.quantize_seconds;
    row.ppl = c.quant.ppl;
    row.ppl_stderr = c.quant.ppl_stderr;
    row.kld = c.kld_mean;
    row.kld_p99 = c.kld_p99;
    row.top1 = c.top1;
    row.tokens = c.tokens;
    fp_ppl = c.fp.ppl;
    if (auto counts = pipe.sink_counts()) row.sink = counts->Describe();
    rows.push_back(row);
  }
  for (RecipeRow& r : rows) r.delta_ppl = r.ppl - fp_ppl;
  return rows;
}

std::string RecipeTableMarkdown(const std::vector<RecipeRow>& rows) {
  std::string s =
      "| method | bits | ppl | delta ppl | KL | top-1 | worst input max/median | worst per-token "
      "max/median | time (s) |\n"
      "|---|---|---|---|---|---|---|---|---|\n";
  char b[512];
  for (const RecipeRow& r : rows) {
    std::snprintf(b, sizeof b,
                  "| %s | %s | %.4f | %+.4f | %.4f | %.3f | %.1f (%s) | %.1f (%s) | %.1f |\n",
                  r.method.c_str(), r.bits.c_str(), r.ppl, r.delta_ppl, r.kld, r.top1,
                  r.worst_ratio, r.worst_site.c_str(), r.worst_token_ratio,
                  r.worst_token_site.c_str(), r.quantize_seconds + r.eval_seconds);
    s += b;
  }
  return s;
}

}  // namespace sq
