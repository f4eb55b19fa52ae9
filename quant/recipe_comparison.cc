#include "quant/recipe_comparison.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>

#include "calib/quant_error.h"
#include "core/error.h"
#include "model/proj.h"
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

// Weights of the linears `c` leaves in float (all of them for the float model, c == null).
double FloatLinearWeights(const Model& fp, const QuantConfig* c) {
  double n = 0;
  for (Proj p : kAllProjs) {
    if (c && c->QuantizesWeight(p)) continue;
    const int layers = p == Proj::kLmHead ? 1 : fp.config.n_layers;
    for (int l = 0; l < layers; ++l) {
      const Linear& lin = *LinearAt(fp, l, p);
      n += static_cast<double>(lin.in_features()) * lin.out_features();
    }
  }
  return n;
}

// Weight bytes: `quantized_bytes` plus 16 bits for each weight left in float.
void SetSize(RecipeRow& row, const Model& fp, const QuantConfig* c, double quantized_bytes) {
  row.weight_bytes = quantized_bytes + 2 * FloatLinearWeights(fp, c);
  row.bits_per_weight = 8 * row.weight_bytes / FloatLinearWeights(fp, nullptr);
}

// A row is on the frontier when no row that costs at most as much has a lower KL.
void MarkPareto(std::vector<RecipeRow>& rows) {
  for (RecipeRow& r : rows) {
    r.pareto = std::none_of(rows.begin(), rows.end(),
                            [&](const RecipeRow& o) { return CostsAtMost(o, r) && o.kld < r.kld; });
  }
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
  // The float model's layers run once, by the fp row or the first recipe; the rest replay them.
  std::vector<Mat> fp_final;
  for (const std::string& m : opt.methods) {
    auto progress = [&](int done, int total) {
      if (opt.progress) opt.progress(m, done, total);
    };
    RecipeRow row;
    row.method = m;
    if (m == "fp") {
      const auto t0 = std::chrono::steady_clock::now();
      const PplResult r = EvaluatePerplexity(fp, eval, nullptr, {}, progress,
                                             fp_final.empty() ? &fp_final : nullptr);
      row.ppl = r.ppl;
      row.ppl_stderr = r.ppl_stderr;
      row.tokens = r.tokens;
      row.eval_seconds = Seconds(t0);
      SetWorst(row, LinearInputRatios(fp, eval, opt.ratio_windows));
      fp_ppl = r.ppl;
      SetSize(row, fp, nullptr, 0);
      rows.push_back(row);
      continue;
    }
    const Recipe& asked = recipes[next++];
    const auto t0 = std::chrono::steady_clock::now();
    // Layer by layer: the recipe's transformed and quantized layers exist only while every
    // stream runs through them (quant/recipe_pipeline.h).
    RecipePipeline pipe(fp, asked, calib, opt.integer_kernels);
    const Recipe& recipe = pipe.recipe();  // what auto chose, or the one asked for
    const QuantConfig& rc = recipe.config;
    row.bit_setting = {rc.w_bits, rc.a_bits, rc.kv_bits, static_cast<int>(rc.alt_layers.size()),
                       rc.SplitsOutliers() ? rc.outlier_channels : 0};
    row.act_bits = 0;
    for (int l = 0; l < fp.config.n_layers; ++l) row.act_bits += rc.ForLayer(l).a_bits;
    row.act_bits /= fp.config.n_layers;
    row.settings = recipe.Settings();
    row.log = pipe.log();
    InputRatioObserver ratios(pipe.transformed());
    CompareOptions co;
    co.sqnr_windows = 0;
    co.progress = progress;
    co.hooks = pipe.Hooks();
    co.fp_final_states = &fp_final;
    co.extra_streams = {
        {&pipe.transformed(), &ratios, opt.ratio_windows > 0 ? opt.ratio_windows : -1, false}};
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
    SetSize(row, fp, &recipe.config, static_cast<double>(pipe.report().weight_bytes));
    rows.push_back(row);
  }
  for (RecipeRow& r : rows) r.delta_ppl = r.ppl - fp_ppl;
  return rows;
}

bool CostsAtMost(const RecipeRow& a, const RecipeRow& b) {
  return a.weight_bytes <= b.weight_bytes && a.act_bits <= b.act_bits &&
         a.bit_setting.kv_bits <= b.bit_setting.kv_bits;
}

namespace {

void SetBits(QuantConfig& c, const BitSetting& b) {
  c.w_bits = b.w_bits, c.a_bits = b.a_bits, c.kv_bits = b.kv_bits;
  if (b.outlier_channels > 0) c.outliers = true, c.outlier_channels = b.outlier_channels;
}

// Layers by decreasing sensitivity to `b`'s bits (CompareBitSettings says how it is measured),
// and a line that says so: "L2 0.3100, L0 0.1200, ...".
std::vector<int> BySensitivity(const Model& fp, const std::vector<Window>& calib,
                               const CompareRecipesOptions& opt, const BitSetting& b,
                               std::string& why) {
  CompareRecipesOptions probe = opt;
  probe.methods = {"rtn"};
  probe.ratio_windows = 0;
  SetBits(probe.base, {8, 8, b.kv_bits});
  probe.base.alt_w_bits = b.w_bits, probe.base.alt_a_bits = b.a_bits;
  const int L = fp.config.n_layers;
  std::vector<double> kl(L);
  for (int l = 0; l < L; ++l) {
    probe.base.alt_layers = {l};
    if (opt.progress) {
      probe.progress = [&](const std::string&, int done, int total) {
        opt.progress("sensitivity of layer " + std::to_string(l) + " to " + b.Name(), done, total);
      };
    }
    kl[l] = CompareRecipes(fp, calib, calib, probe)[0].kld;
  }
  std::vector<int> order(L);
  for (int l = 0; l < L; ++l) order[l] = l;
  std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return kl[x] > kl[y]; });
  char buf[64];
  for (int l : order) {
    std::snprintf(buf, sizeof buf, "%sL%d %.4f", why.empty() ? "" : ", ", l, kl[l]);
    why += buf;
  }
  return order;
}

}  // namespace

std::vector<RecipeRow> CompareBitSettings(const Model& fp, const std::vector<Window>& calib,
                                          const std::vector<Window>& eval,
                                          const CompareRecipesOptions& opt,
                                          const std::vector<BitSetting>& settings) {
  Check(!settings.empty(), "--pareto-bits: no bit settings given");
  CompareRecipesOptions each = opt;
  std::erase(each.methods, "fp");
  Check(!each.methods.empty(), "--pareto: --methods names no recipe besides fp");
  const int L = fp.config.n_layers;
  for (const BitSetting& b : settings) {  // validate every name and setting before the runs
    QuantConfig c = each.base;
    SetBits(c, b);
    c.Validate();
    for (const std::string& m : each.methods) MakeRecipe(m, c);
    Check(b.sensitive_layers <= L, "--pareto-bits: " + b.Name() + " keeps " +
                                       std::to_string(b.sensitive_layers) +
                                       " layers at W8A8, but the model has " + std::to_string(L));
    Check(b.sensitive_layers == 0 || !calib.empty(),
          "--pareto-bits: " + b.Name() + " needs calibration windows to rank the layers");
  }
  std::map<std::string, std::pair<std::vector<int>, std::string>> ranked;  // by uniform Name()
  std::vector<RecipeRow> rows;
  for (size_t i = 0; i < settings.size(); ++i) {
    const BitSetting& b = settings[i];
    CompareRecipesOptions run = each;
    SetBits(run.base, b);
    std::string mixed;
    if (b.sensitive_layers > 0) {
      const BitSetting uniform{b.w_bits, b.a_bits, b.kv_bits};  // ranked without outliers
      auto it = ranked.find(uniform.Name());
      if (it == ranked.end()) {
        std::string why;
        std::vector<int> order = BySensitivity(fp, calib, opt, uniform, why);
        it = ranked.emplace(uniform.Name(), std::make_pair(order, why)).first;
      }
      const std::vector<int>& order = it->second.first;
      run.base.alt_layers.assign(order.begin(), order.begin() + b.sensitive_layers);
      run.base.alt_w_bits = run.base.alt_a_bits = 8;
      mixed = "layers";
      for (int l : run.base.alt_layers) mixed += " " + std::to_string(l);
      mixed += " at W8A8; KL of " + uniform.Name() +
               " on one layer alone (rtn, calibration "
               "windows, the rest W8A8): " +
               it->second.second;
    }
    if (i == 0) run.methods.insert(run.methods.begin(), "fp");  // the float row once
    if (opt.progress) {  // one progress line per method and setting
      run.progress = [&](const std::string& m, int done, int total) {
        opt.progress(m == "fp" ? m : m + " " + b.Name(), done, total);
      };
    }
    std::vector<RecipeRow> r = CompareRecipes(fp, calib, eval, run);
    for (RecipeRow& row : r) {
      if (row.method != "fp") row.mixed = mixed;
    }
    rows.insert(rows.end(), r.begin(), r.end());
  }
  MarkPareto(rows);
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
                  r.method.c_str(), r.bit_setting.Name().c_str(), r.ppl, r.delta_ppl, r.kld, r.top1,
                  r.worst_ratio, r.worst_site.c_str(), r.worst_token_ratio,
                  r.worst_token_site.c_str(), r.quantize_seconds + r.eval_seconds);
    s += b;
  }
  return s;
}

}  // namespace sq
