// +outliers (quant/outlier_channels.h): the split is exact in float, the channels are the
// largest calibration |x| of each linear's input, and on a model with a massive channel the
// 8-bit side recovers what per-token 4-bit activations lose.
#include "quant/outlier_channels.h"

#include <catch2/catch.hpp>

#include "model/model.h"
#include "model/random_weights.h"
#include "quant/quantize_model.h"
#include "quant/recipe.h"
#include "quant/transformed_model.h"
#include "tests/test_util.h"

using namespace sq;
using sq::test::Capture;
using sq::test::RandomMat;
using sq::test::RandomWindows;
using sq::test::SmallConfig;

namespace {

// Mean squared logit error of `q` against `fp` over `windows`.
double LogitError(const Model& fp, const Model& q, const std::vector<Window>& windows) {
  double e = 0;
  long n = 0;
  for (const Window& w : windows) {
    const Mat d = Forward(q, w.tokens) - Forward(fp, w.tokens);
    e += d.squaredNorm();
    n += d.size();
  }
  return e / static_cast<double>(n);
}

// The random 2-layer model the recipe tests below give an outlier channel.
ModelConfig TwoLayers() {
  return SmallConfig({.hidden = 64,
                      .intermediate = 96,
                      .n_layers = 2,
                      .head_dim = 16,
                      .vocab = 64,
                      .max_position = 128});
}

}  // namespace

TEST_CASE("LargestChannels: the k largest, ties to the lower index, in index order",
          "[quant][outliers]") {
  Vec a(6);
  a << 1, 9, 3, 9, 0, 5;
  CHECK(LargestChannels(a, 2) == std::vector<int>{1, 3});
  CHECK(LargestChannels(a, 3) == std::vector<int>{1, 3, 5});
  CHECK(LargestChannels(a, 0).empty());
  CHECK(LargestChannels(a, 10).size() == 6);  // clamped to the width
}

TEST_CASE("OutlierChannelsOf: of the k largest, only those ratio x the median channel or more",
          "[quant][outliers]") {
  Vec a(8);
  a << 1, 1, 1, 1, 50, 30, 1, 25;  // median channel max 1
  CHECK(OutlierChannelsOf(a, 2, 20) == std::vector<int>{4, 5});
  CHECK(OutlierChannelsOf(a, 8, 20) == std::vector<int>{4, 5, 7});
  CHECK(OutlierChannelsOf(a, 8, 40) == std::vector<int>{4});
  CHECK(OutlierChannelsOf(a, 8, 60).empty());
  CHECK(OutlierChannelsOf(a, 3, 0) == LargestChannels(a, 3));  // no ratio: all k
  CHECK(OutlierChannelsOf(Vec::Zero(8), 4, 20).empty());       // a silent input has none
}

TEST_CASE("OutlierChannelsLinear: masked main path plus the side is the whole linear",
          "[quant][outliers]") {
  const Mat w = RandomMat(12, 20, 1), x = RandomMat(7, 20, 2);
  const std::vector<int> s = {3, 11, 19};
  Mat main = w;
  ZeroColumns(main, s);
  ModelWeights store;
  auto dense = [&](Mat m) {
    const int64_t r = m.rows(), c = m.cols();
    return std::make_shared<DenseLinear>(store.Own(std::move(m), {r, c}));
  };
  const OutlierChannelsLinear split(dense(main), s, dense(GatherColumns(w, s)));
  Mat y;
  split.Apply(x, y);
  const Mat ref = x * w.transpose();
  CHECK((y - ref).cwiseAbs().maxCoeff() < 1e-5f);
  Mat xt;
  split.TransformInput(x, xt);
  CHECK(xt.col(11).isZero());
  CHECK(xt.col(10) == x.col(10));
  CHECK_THROWS_WITH(OutlierChannelsLinear(dense(main), {20}, dense(Mat::Zero(12, 1))),
                    Catch::Contains("channel 20 outside [0, 20)"));
}

TEST_CASE("rtn+outliers keeps the largest calibration channels of each linear at 8 bits",
          "[quant][outliers][recipe]") {
  const ModelConfig c = TwoLayers();
  ModelWeights wts = RandomWeights(c, 7);
  // A massive channel (as in trained models' residual stream): channel 5 of every embedding 60x.
  Mat embed = ToMat(wts.embed);
  embed.col(5) *= 60.0f;
  Replace(wts, wts.embed, std::move(embed));
  const Model fp = BuildDenseModel(c, wts);
  const auto calib = RandomWindows(6, 48, c.vocab, 8), eval = RandomWindows(4, 48, c.vocab, 9);
  QuantConfig base;
  base.a_bits = 4;
  base.outlier_channels = 4;
  const Recipe recipe = MakeRecipe("rtn+outliers", base);
  const SettingList settings = recipe.Settings();
  CHECK(std::find(settings.begin(), settings.end(),
                  std::pair<std::string, std::string>{"outlier_channels", "4"}) != settings.end());
  const RecipeResult rr = ApplyRecipe(fp, recipe, calib);
  // Layer 0's q_proj reads the norm of the float embeddings: its channels are the 4 largest
  // |x| of that input over the calibration windows, and channel 5 is among them.
  Capture cap(Site::kAttnInput, 0);
  for (const Window& w : calib) {
    Mat h = Embed(fp, w.tokens);
    ForwardBlock(fp, 0, h, &cap);
  }
  Vec absmax = Vec::Zero(c.hidden);
  for (const Mat& x : cap.seen)
    absmax = absmax.cwiseMax(x.cwiseAbs().colwise().maxCoeff().transpose());
  const std::vector<int> expect = LargestChannels(absmax, 4);
  CHECK(std::find(expect.begin(), expect.end(), 5) != expect.end());
  int split = 0;
  for (const LinearReport& lr : rr.report.linears) {
    if (lr.layer < 0) continue;  // the lm_head stays float
    INFO("layer " << lr.layer << " " << lr.format);
    CHECK(lr.outlier_channels.size() == 4);
    CHECK_THAT(lr.format, Catch::Contains("4 outlier channels w8a8"));
    const auto* o = FindWrapped<OutlierChannelsLinear>(*LinearAt(rr.quantized, lr.layer, lr.proj));
    REQUIRE(o != nullptr);
    CHECK(o->channels() == lr.outlier_channels);
    if (lr.layer == 0 && (lr.proj == Proj::kQ || lr.proj == Proj::kV)) {
      CHECK(lr.outlier_channels == expect);
    }
    ++split;
  }
  CHECK(split == 2 * 7);
  // The massive channel ruins per-token 4-bit scales; its 8-bit side gives most of it back.
  const double rtn =
      LogitError(fp, ApplyRecipe(fp, MakeRecipe("rtn", base), calib).quantized, eval);
  const double outliers = LogitError(fp, rr.quantized, eval);
  INFO("rtn " << rtn << ", rtn+outliers " << outliers);
  CHECK(outliers < 0.5 * rtn);
}

TEST_CASE("+outliers with a ratio keeps a side only where an input has outlier channels",
          "[quant][outliers][recipe]") {
  const ModelConfig c = TwoLayers();
  ModelWeights wts = RandomWeights(c, 7);
  // A residual sink: channel 5 large on every token. (A channel large on some tokens only, as in
  // the test above, is capped by RMSNorm at sqrt(64) = 8 and stays under 20x the median max.)
  Mat embed = ToMat(wts.embed);
  embed.col(5).setConstant(100.0f * embed.cwiseAbs().maxCoeff());
  Replace(wts, wts.embed, std::move(embed));
  const Model fp = BuildDenseModel(c, wts);
  QuantConfig base;
  base.a_bits = 4;
  base.outlier_channels = 4;
  base.outlier_ratio = 20;
  const Recipe recipe = MakeRecipe("rtn+outliers", base);
  const SettingList settings = recipe.Settings();
  CHECK(std::find(settings.begin(), settings.end(),
                  std::pair<std::string, std::string>{"outlier_ratio", "20"}) != settings.end());
  const RecipeResult rr = ApplyRecipe(fp, recipe, RandomWindows(6, 48, c.vocab, 8));
  int split = 0, plain = 0;
  for (const LinearReport& lr : rr.report.linears) {
    if (lr.layer < 0) continue;
    INFO("layer " << lr.layer << " " << lr.format);
    const auto* o = FindWrapped<OutlierChannelsLinear>(*LinearAt(rr.quantized, lr.layer, lr.proj));
    CHECK((o != nullptr) == !lr.outlier_channels.empty());
    CHECK(lr.outlier_channels.size() <= 4);
    if (lr.layer == 0 && lr.proj == Proj::kQ) CHECK(lr.outlier_channels == std::vector<int>{5});
    ++(o ? split : plain);
  }
  // The massive channel qualifies where the residual stream is read; a random-weight linear's
  // own outputs (o_proj, down_proj inputs) have no channel 20x their median.
  CHECK(split > 0);
  CHECK(plain > 0);
}

TEST_CASE("+outliers needs quantized weights and a positive channel count", "[quant][outliers]") {
  QuantConfig base;
  base.w_bits = 16;
  base.a_bits = 4;
  CHECK_THROWS_WITH(MakeRecipe("rtn+outliers", base), Catch::Contains("--w-bits below 16"));
  base.w_bits = 4;
  base.outlier_bits = 16;
  CHECK_THROWS_WITH(MakeRecipe("rtn+outliers", base), Catch::Contains("--outlier-bits"));
}
