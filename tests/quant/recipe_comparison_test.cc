// compare --pareto: every method at every bit setting, with the weights' size and the frontier.
#include "quant/recipe_comparison.h"

#include <algorithm>

#include <catch2/catch.hpp>

#include "model/random_weights.h"
#include "tests/test_util.h"

using namespace sq;

TEST_CASE("a bit-setting sweep sizes every row and marks the size/quality frontier",
          "[quant][pareto]") {
  test::SmallShape shape;
  shape.hidden = 64;  // per-channel scales: 4 bytes a row next to hidden / 2 bytes of int4 codes
  const ModelConfig c = test::SmallConfig(shape);
  const Model fp = BuildDenseModel(c, RandomWeights(c, 5));
  CompareRecipesOptions opt;
  opt.methods = {"rtn"};
  opt.base.a_bits = 4;
  opt.ratio_windows = 0;
  const std::vector<BitSetting> settings = {
      {8, 8, 16}, {4, 16, 16}, {4, 4, 16}, {4, 4, 4}, {4, 4, 16, 1}};
  const std::vector<RecipeRow> rows =
      CompareBitSettings(fp, test::RandomWindows(2, 16, c.vocab, 1),
                         test::RandomWindows(2, 16, c.vocab, 2), opt, settings);
  REQUIRE(rows.size() == 1 + settings.size());
  CHECK(rows[0].method == "fp");
  for (size_t i = 0; i < settings.size(); ++i)
    CHECK(rows[i + 1].bit_setting.Name() == settings[i].Name());

  // Linears' weights: the layers' quantized (int4 two a byte or int8, a float scale per output
  // row), the lm_head kept float at 16 bits.
  const double kv = c.n_kv_heads * c.head_dim, q = c.n_heads * c.head_dim;
  const double layer = c.hidden * (q + 2 * kv) + q * c.hidden + 3.0 * c.hidden * c.intermediate;
  const double rows_out = q + 2 * kv + c.hidden + 2.0 * c.intermediate + c.hidden;
  const double quantized = c.n_layers * layer, head = double(c.vocab) * c.hidden;
  const double scales = 4 * c.n_layers * rows_out;
  CHECK(rows[0].weight_bytes == 2 * (quantized + head));
  CHECK(rows[0].bits_per_weight == 16);
  CHECK(rows[1].weight_bytes == quantized + scales + 2 * head);
  for (size_t i = 2; i + 1 < rows.size(); ++i) {
    CHECK(rows[i].weight_bytes == quantized / 2 + scales + 2 * head);
    CHECK(rows[i].bits_per_weight == Approx(8 * rows[i].weight_bytes / (quantized + head)));
  }

  // The frontier as its definition says, and what it must hold whatever the KLs: the float row
  // (KL 0) and the only row with a 4-bit KV cache.
  for (const RecipeRow& r : rows) {
    bool dominated = false;
    for (const RecipeRow& o : rows) {
      dominated |= o.weight_bytes <= r.weight_bytes &&
                   o.bit_setting.a_bits <= r.bit_setting.a_bits &&
                   o.bit_setting.kv_bits <= r.bit_setting.kv_bits && o.kld < r.kld;
    }
    INFO(r.bit_setting.Name());
    CHECK(r.pareto == !dominated);
  }
  CHECK(rows[0].pareto);
  CHECK(rows[4].pareto);  // the only row with a 4-bit KV cache

  // Mixed: the layer whose W4A4 costs most alone (the other at W8A8) kept at W8A8; one layer's
  // int4 codes become int8, and activations average 6 bits.
  const RecipeRow& mixed = rows.back();
  CHECK(mixed.bit_setting.Name() == "W4A4KV16+1L");
  CHECK(mixed.weight_bytes == rows[3].weight_bytes + layer / 2);
  CHECK(mixed.act_bits == 6);
  CHECK(mixed.mixed.find(" at W8A8; KL of W4A4KV16 on one layer alone") != std::string::npos);
  CHECK(mixed.kld < rows[3].kld);
  const auto alt = std::find(mixed.settings.begin(), mixed.settings.end(),
                             std::pair<std::string, std::string>{"alt_bits", "W8A8"});
  CHECK(alt != mixed.settings.end());
  CHECK(rows[1].kld < rows[3].kld);  // W8A8 beats W4A4
}

TEST_CASE("compare runs the float model's layers once: later methods replay its final states",
          "[quant]") {
  const ModelConfig c = test::SmallConfig(test::SmallShape{});
  const Model fp = BuildDenseModel(c, RandomWeights(c, 7));
  const auto calib = test::RandomWindows(2, 16, c.vocab, 3);
  const auto eval = test::RandomWindows(3, 16, c.vocab, 4);
  CompareRecipesOptions opt;
  opt.base.a_bits = 4;
  opt.methods = {"rtn", "rotate"};  // rotate replays the float states rtn's run recorded
  const RecipeRow replayed = CompareRecipes(fp, calib, eval, opt)[1];
  opt.methods = {"fp", "rotate"};  // ... or those the fp row's run recorded
  const RecipeRow after_fp = CompareRecipes(fp, calib, eval, opt)[1];
  opt.methods = {"rotate"};  // rotate runs the float model itself
  const RecipeRow alone = CompareRecipes(fp, calib, eval, opt)[0];
  REQUIRE(replayed.method == "rotate");
  CHECK(replayed.kld > 0);
  CHECK(replayed.kld == alone.kld);
  CHECK(replayed.kld_p99 == alone.kld_p99);
  CHECK(replayed.top1 == alone.top1);
  CHECK(replayed.ppl == alone.ppl);
  CHECK(replayed.delta_ppl == alone.delta_ppl);
  CHECK(after_fp.kld == alone.kld);
  CHECK(after_fp.top1 == alone.top1);
  CHECK(after_fp.delta_ppl == alone.delta_ppl);
}

TEST_CASE("a bit setting with +kC runs every method with k 8-bit outlier channels per linear",
          "[quant][pareto][outliers]") {
  test::SmallShape shape;
  shape.hidden = 64;
  const ModelConfig c = test::SmallConfig(shape);
  const Model fp = BuildDenseModel(c, RandomWeights(c, 5));
  CompareRecipesOptions opt;
  opt.methods = {"rtn"};
  opt.ratio_windows = 0;
  // The plain setting after the split one: each setting starts from the user's config.
  const std::vector<BitSetting> settings = {{4, 4, 16, 0, 8}, {4, 4, 16}};
  const std::vector<RecipeRow> rows =
      CompareBitSettings(fp, test::RandomWindows(2, 16, c.vocab, 1),
                         test::RandomWindows(2, 16, c.vocab, 2), opt, settings);
  REQUIRE(rows.size() == 3);
  CHECK(rows[1].bit_setting.Name() == "W4A4KV16+8C");
  CHECK(rows[2].bit_setting.Name() == "W4A4KV16");
  const auto has = [](const RecipeRow& r, const std::string& k, const std::string& v) {
    return std::find(r.settings.begin(), r.settings.end(), std::pair{k, v}) != r.settings.end();
  };
  CHECK(has(rows[1], "outlier_channels", "8"));
  CHECK_FALSE(has(rows[2], "outlier_channels", "8"));
  // Each layer linear's side: 8 int8 codes and a float scale per output row.
  const double kv = c.n_kv_heads * c.head_dim, q = c.n_heads * c.head_dim;
  const double rows_out = q + 2 * kv + c.hidden + 2.0 * c.intermediate + c.hidden;
  CHECK(rows[1].weight_bytes == rows[2].weight_bytes + c.n_layers * rows_out * (8 + 4));
}
