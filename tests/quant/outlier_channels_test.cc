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
  const ModelConfig c = SmallConfig({.hidden = 64,
                                     .intermediate = 96,
                                     .n_layers = 2,
                                     .head_dim = 16,
                                     .vocab = 64,
                                     .max_position = 128});
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

TEST_CASE("+outliers needs quantized weights and a positive channel count", "[quant][outliers]") {
  QuantConfig base;
  base.w_bits = 16;
  base.a_bits = 4;
  CHECK_THROWS_WITH(MakeRecipe("rtn+outliers", base), Catch::Contains("--w-bits below 16"));
  base.w_bits = 4;
  base.outlier_bits = 16;
  CHECK_THROWS_WITH(MakeRecipe("rtn+outliers", base), Catch::Contains("--outlier-bits"));
}
