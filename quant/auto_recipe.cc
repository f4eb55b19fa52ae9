#include "quant/auto_recipe.h"

#include <chrono>
#include <cstdio>
#include <cstring>

#include "core/dist.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/strings.h"
#include "quant/input_ratio.h"
#include "quant/recipe_comparison.h"

namespace sq {

namespace {

constexpr char kAuto[] = "auto";
// Below this worst per-token max/median at the linears' inputs, a 4-bit token scale is not
// ruled by outlier channels and a learned rotation has little to remove; its descent is then
// not worth its minutes.
constexpr double kHeavyTailRatio = 8.0;

// The user's modifiers after "auto" ("+outliers+sink-aware"), or "".
std::string ForcedModifiers(const std::string& method) { return method.substr(strlen(kAuto)); }

std::string Fixed(double v, int digits) {
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}

// One candidate (a method at a bit setting) quantized on `fit` and scored on `score`: its mean
// KL to the float model.
class Scorer {
 public:
  Scorer(const Model& fp, const std::vector<Window>& calib) : fp_(fp) {
    const size_t n_fit = (calib.size() * 3 + 3) / 4;
    fit_.assign(calib.begin(), calib.begin() + std::min(n_fit, calib.size() - 1));
    score_.assign(calib.begin() + fit_.size(), calib.end());
  }
  double KL(const std::string& method, const QuantConfig& config) {
    const auto t0 = std::chrono::steady_clock::now();
    CompareRecipesOptions o;
    o.methods = {method};
    o.base = config;
    o.ratio_windows = 0;
    const double kl = CompareRecipes(fp_, fit_, score_, o)[0].kld;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ++tried_;
    if (ProgressEnabled() && dist::Rank() == 0) {
      std::fprintf(stderr, "auto: candidate %d %s%s: KL %.6f (%s)\n", tried_, method.c_str(),
                   config.w_sym ? "" : " --w-asym", kl, FormatDuration(s).c_str());
    }
    return kl;
  }
  const std::vector<Window>& fit() const { return fit_; }
  std::string Split() const {
    return std::to_string(fit_.size()) + " calibration windows fit, " +
           std::to_string(score_.size()) + " scored";
  }

 private:
  const Model& fp_;
  std::vector<Window> fit_, score_;
  int tried_ = 0;
};

// The modifiers worth trying at the user's bit setting, in the order they are tried.
std::vector<std::string> Modifiers(const QuantConfig& c) {
  std::vector<std::string> m;
  if (c.a_bits < 16) m.push_back("act-clip");
  if (c.a_bits < 16 || c.kv_bits < 16) m.push_back("seq");
  if (c.kv_bits < 16) m.push_back("kv-rotate");
  return m;
}

// What the float model's profile says, and whether a learned rotation is worth trying.
bool ReadProfile(const Model& fp, const std::vector<Window>& fit, std::vector<std::string>& why) {
  const std::vector<InputRatio> ratios = LinearInputRatios(fp, fit, 4);
  const InputRatio& worst = WorstInput(ratios);
  const bool heavy = worst.token_ratio >= kHeavyTailRatio;
  std::string line = "profile: worst linear input " + worst.Name() + ", max/median " +
                     Fixed(worst.ratio(), 1) + " (per token " + Fixed(worst.token_ratio, 1) + ")";
  if (fp.config.gated_norm_rank > 0) line += "; gated norms (GatedNorm)";
  line += heavy ? ": heavy tails, the learned rotation is a candidate"
                : ": light tails (per token < " + Fixed(kHeavyTailRatio, 0) +
                      "), the learned rotation is not tried";
  why.push_back(line);
  return heavy;
}

// "+m: KL 0.123456 (-4.2%): kept" or "...: dropped (not 1% better)"; whether `kl` is kept
// against `best_kl`.
bool KeepIfBetter(const std::string& what, double kl, double best_kl,
                  std::vector<std::string>& why) {
  const double change = kl / best_kl - 1;
  const bool keep = change < -kAutoNoise;
  why.push_back(
      what + ": KL " + Fixed(kl, 6) + " (" + (change >= 0 ? "+" : "") + Fixed(100 * change, 1) +
      "%): " + (keep ? "kept" : "dropped (not " + Fixed(100 * kAutoNoise, 0) + "% better)"));
  return keep;
}

}  // namespace

bool IsAutoMethod(const std::string& method) {
  return method == kAuto || method.rfind(std::string(kAuto) + "+", 0) == 0;
}

std::string AutoUnionMethod(const std::string& method, const QuantConfig& base) {
  const std::string forced = ForcedModifiers(method);
  std::string union_method = "rotate-learned-gptq";
  for (const std::string& m : Modifiers(base)) {
    if (!Has(SplitList(forced, '+'), m)) union_method += "+" + m;
  }
  return union_method + forced;
}

Recipe ResolveRecipe(const Model& fp, const Recipe& r, const std::vector<Window>& calib,
                     std::vector<std::string>& why) {
  if (!r.auto_select) return r;
  // Under mpirun every rank scores its block of the windows and CompareRecipes gathers the KL in
  // rank order, so every rank holds the same KL and makes the same choice.
  Check(calib.size() >= 2, "--method " + r.name +
                               ": needs at least 2 calibration windows (it fits candidates on "
                               "some and scores them on the rest): --calib FILE");
  QuantConfig c = r.base_config;
  const std::string forced = ForcedModifiers(r.name);
  Scorer scorer(fp, calib);
  const bool heavy = ReadProfile(fp, scorer.fit(), why);

  std::vector<std::string> bases = {"gptq", "rotate-gptq"};
  if (heavy) bases.push_back("rotate-learned-gptq");
  std::string best;
  double best_kl = 0;
  std::string line = "candidates on " + scorer.Split() + ":";
  for (const std::string& b : bases) {
    const double kl = scorer.KL(b + forced, c);
    line += " " + b + " KL " + Fixed(kl, 6);
    if (best.empty() || kl < best_kl) best = b + forced, best_kl = kl;
  }
  why.push_back(line + " -> " + best);

  // A zero point per weight group costs a few bits a row and centres the grid on rows whose
  // values are not symmetric about 0 (tried before the modifiers, which fit to the weights).
  if (c.w_bits < 16 && c.w_sym) {
    QuantConfig asym = c;
    asym.w_sym = false;
    const double kl = scorer.KL(best, asym);
    if (KeepIfBetter("asymmetric weights (--w-asym)", kl, best_kl, why)) c = asym, best_kl = kl;
  }
  for (const std::string& m : Modifiers(c)) {
    if (Has(SplitList(forced, '+'), m)) continue;  // the user's: in every candidate
    const std::string tried = best + "+" + m;
    const double kl = scorer.KL(tried, c);
    if (KeepIfBetter("+" + m, kl, best_kl, why)) best = tried, best_kl = kl;
  }
  why.push_back("chose " + best + ", fitted on all " + std::to_string(calib.size()) +
                " calibration windows" +
                (c.w_sym == r.base_config.w_sym ? "" : ", with asymmetric weights (--w-asym)"));
  return MakeRecipe(best, c);
}

}  // namespace sq
