#include "cli/quant_flags.h"

#include <algorithm>
#include <regex>
#include <string>

#include "core/error.h"
#include "quant/recipe.h"

namespace sq {

QuantConfig FloatDefaults() {
  QuantConfig c;
  c.w_bits = c.a_bits = c.kv_bits = 16;
  return c;
}

BitSetting ParseBitSetting(const std::string& flag, const std::string& item, int kv_bits,
                           bool sweep) {
  static const std::regex kForm(
      "W(\\d{1,2})A(\\d{1,2})(KV(\\d{1,2}))?(\\+(\\d{1,4})L)?(\\+([1-9]\\d{0,4})C)?",
      std::regex::icase);
  const auto bits_ok = [](int v) {
    return std::find(kBitsChoices.begin(), kBitsChoices.end(), v) != kBitsChoices.end();
  };
  std::smatch m;
  BitSetting b{0, 0, kv_bits};
  if (std::regex_match(item, m, kForm) &&
      (sweep || (!m[3].matched && !m[5].matched && !m[7].matched))) {
    b = {std::stoi(m[1]), std::stoi(m[2]), m[4].matched ? std::stoi(m[4]) : kv_bits,
         m[6].matched ? std::stoi(m[6]) : 0, m[8].matched ? std::stoi(m[8]) : 0};
  }
  const std::string form = sweep ? "W<bits>A<bits>[KV<bits>][+<n>L][+<k>C]" : "W<bits>A<bits>";
  Check(bits_ok(b.w_bits) && bits_ok(b.a_bits) && bits_ok(b.kv_bits),
        "--" + flag + ": \"" + item + "\" is not " + form + " with bits 2-8 or 16");
  return b;
}

QuantConfig ParseQuantConfig(Args& a, const QuantConfig& defaults) {
  QuantConfig c = defaults;
  c.w_bits = a.IntOneOf("w-bits", defaults.w_bits, kBitsChoices);
  c.a_bits = a.IntOneOf("a-bits", defaults.a_bits, kBitsChoices);
  c.kv_bits = a.IntOneOf("kv-bits", defaults.kv_bits, kBitsChoices);
  c.w_group = a.Int("w-group", defaults.w_group, 0, 1 << 20);
  c.kv_group = a.Int("kv-group", defaults.kv_group, 0, 1 << 20);
  c.a_clip = static_cast<float>(a.Float("a-clip", defaults.a_clip, 1e-6, 1.0));
  c.a_clip_min = static_cast<float>(a.Float("a-clip-min", defaults.a_clip_min, 0.05, 1.0));
  if (a.Flag("w-asym")) c.w_sym = false;
  if (a.Flag("no-clip-search")) c.clip_search = false;
  if (a.Flag("act-order")) c.act_order = true;
  c.gptq_block = a.Int("gptq-block", defaults.gptq_block, 1, 1 << 16);
  c.gptq_damp = a.Float("gptq-damp", defaults.gptq_damp, 1e-9, 1e3);
  if (a.Has("keep-float")) c.keep_float = ParseProjList(a.Str("keep-float", ""));
  c.alt_layers = a.IntList("mixed-layers", 0, kIntMax);
  Check(!a.Has("mixed-bits") || !c.alt_layers.empty(), "--mixed-bits needs --mixed-layers");
  const BitSetting alt = ParseBitSetting("mixed-bits", a.Str("mixed-bits", "W8A8"), 16, false);
  c.alt_w_bits = alt.w_bits;
  c.alt_a_bits = alt.a_bits;
  c.smooth_alpha = static_cast<float>(a.Float("alpha", defaults.smooth_alpha, 0.0, 1.0));
  c.sink_ratio = static_cast<float>(a.Float("sink-ratio", defaults.sink_ratio, 1.0, 1e9));
  c.outlier_channels = a.Int("outlier-channels", defaults.outlier_channels, 1, 1 << 20);
  c.outlier_ratio = a.Float("outlier-ratio", defaults.outlier_ratio, 0.0, 1e9);
  c.outlier_bits = a.Int("outlier-bits", defaults.outlier_bits, 2, 8);
  c.learn_steps = a.Int("learn-steps", defaults.learn_steps, 0, 10000);
  c.learn_lr = a.Float("learn-lr", defaults.learn_lr, 1e-6, 1.0);
  c.learn_tokens = a.Int("learn-tokens", defaults.learn_tokens, 16, 1 << 20);
  if (a.Has("seed")) c.seed = static_cast<uint64_t>(SeedFlag(a));
  return c;
}

MethodFlags ParseMethodFlags(Args& a, const QuantConfig& c) {
  MethodFlags m;
  const bool gptq_flag = a.Flag("gptq");
  m.method = a.Str("method", gptq_flag ? "gptq" : "");
  Check(!gptq_flag || m.method == "gptq",
        "--gptq contradicts --method " + m.method + " (use one of them)");
  m.calib = a.Str("calib", "");
  m.calib_tokens = TokensFlag(a, "calib-tokens");
  m.quant = c.w_bits < 16 || c.a_bits < 16 || c.kv_bits < 16 || !m.method.empty();
  if (m.quant && m.method.empty()) m.method = "rtn";
  CheckFlagsRead(a, {m.method}, c, "method");
  return m;
}

void CheckFlagsRead(Args& a, const std::vector<std::string>& methods, const QuantConfig& base,
                    const std::string& flag) {
  std::vector<Recipe> recipes;
  std::string names;
  for (const std::string& m : methods) {
    if (m.empty() || m == "fp") continue;
    recipes.push_back(MakeRecipe(m, base));
    names += (names.empty() ? "" : ",") + m;
  }
  for (const std::string& f : RecipeOnlyFlags()) {
    if (!a.Has(f)) continue;
    const bool read = std::any_of(recipes.begin(), recipes.end(),
                                  [&](const Recipe& r) { return RecipeReadsFlag(r, f); });
    Check(read,
          "--" + f + ": not read by " +
              (names.empty() ? "the float model (no --" + flag + ")" : "--" + flag + " " + names) +
              " (read by " + RecipesReading(f) + ")");
  }
}

int ResolveCtx(int ctx, const ModelConfig& c) {
  if (ctx == 0) return std::min(c.max_position, 512);
  Check(ctx <= c.max_position, "--ctx " + std::to_string(ctx) +
                                   " exceeds the model's max_position_embeddings " +
                                   std::to_string(c.max_position));
  return ctx;
}

}  // namespace sq
