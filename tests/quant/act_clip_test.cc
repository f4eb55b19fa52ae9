// The per-linear activation clip search (+act-clip): the grid, the error it measures (checked
// against an independent fake-quant + GEMM), the ratio it picks, and that the quantized model
// carries each linear's ratio.
#include "quant/act_clip.h"

#include <catch2/catch.hpp>

#include "model/model.h"
#include "model/random_weights.h"
#include "quant/gptq.h"
#include "quant/quantize_model.h"
#include "quant/recipe.h"
#include "tests/test_util.h"

using namespace sq;
using sq::test::Capture;
using sq::test::RandomMat;
using sq::test::RandomWindows;
using sq::test::SmallConfig;

namespace {

// err(c) computed the plain way: FakeQuantRowsRef, then x W^T in double.
std::vector<double> ReferenceErrors(const std::vector<Mat>& xs, const Mat& w,
                                    const std::vector<float>& grid) {
  std::vector<double> out;
  for (float c : grid) {
    double e = 0;
    for (const Mat& x : xs) {
      Mat xq = x;
      FakeQuantRowsRef(xq, ActQuantSpec{4, c});
      const Eigen::MatrixXd wd = w.cast<double>();
      e += (xq.cast<double>() * wd.transpose() - x.cast<double>() * wd.transpose()).squaredNorm();
    }
    out.push_back(e);
  }
  return out;
}

// Heavy-tailed rows (cubed normals): a few large entries per token, where clipping pays.
Mat HeavyTailed(int rows, int cols, uint64_t seed) {
  return RandomMat(rows, cols, seed).array().cube().matrix();
}

}  // namespace

TEST_CASE("ActClipGrid runs from 1.00 down to the minimum by 0.05", "[quant][act-clip]") {
  const std::vector<float> g = ActClipGrid(0.5f);
  REQUIRE(g.size() == 11);
  CHECK(g.front() == 1.0f);
  CHECK(g.back() == Approx(0.5f));
  CHECK(ActClipGrid(1.0f) == std::vector<float>{1.0f});
  CHECK(ActClipGrid(0.93f).back() == Approx(0.95f));
  CHECK_THROWS_WITH(ActClipGrid(0.0f), Catch::Contains("--a-clip-min"));
}

TEST_CASE("the activation clip search picks the ratio of least output error", "[quant][act-clip]") {
  const std::vector<Mat> xs = {HeavyTailed(64, 128, 1), HeavyTailed(40, 128, 2)};
  const Mat w = RandomMat(24, 128, 3);
  auto owned = MakeOwned(w, {24, 128});
  auto dense = std::make_shared<DenseLinear>(owned->View());
  const std::vector<float> grid = ActClipGrid(0.5f);
  std::vector<double> errors(grid.size(), 0.0);
  AddActClipErrors(xs, *dense, dense, ActQuantSpec{4, 1.0f}, grid, errors);
  const std::vector<double> ref = ReferenceErrors(xs, w, grid);
  for (size_t i = 0; i < grid.size(); ++i) {
    INFO("clip " << grid[i]);
    CHECK(errors[i] == Approx(ref[i]).epsilon(1e-5));
  }
  const size_t best = BestActClip(errors);
  for (double e : ref) CHECK(ref[best] <= e * (1 + 1e-5));
  // On heavy-tailed tokens clipping pays: the search must move off 1.00 (here -8% error).
  CHECK(grid[best] < 1.0f);
  CHECK(ref[best] < 0.95 * ref[0]);
  // A second call continues the sum (the MPI ranks' fold relies on it).
  std::vector<double> twice = errors;
  AddActClipErrors(xs, *dense, dense, ActQuantSpec{4, 1.0f}, grid, twice);
  CHECK(twice[0] == Approx(2 * errors[0]));
  CHECK(BestActClip({3.0, 1.0, 1.0, 2.0}) == 1);  // ties keep the larger ratio
}

TEST_CASE("+act-clip stores each linear's searched ratio in the quantized model",
          "[quant][act-clip][recipe]") {
  const ModelConfig c = SmallConfig({.hidden = 64,
                                     .intermediate = 96,
                                     .n_layers = 2,
                                     .head_dim = 16,
                                     .vocab = 64,
                                     .max_position = 128});
  const Model fp = BuildDenseModel(c, RandomWeights(c, 7));
  const auto calib = RandomWindows(6, 48, c.vocab, 8);
  QuantConfig base;
  base.w_group = 32;
  base.a_bits = 4;
  const Recipe recipe = MakeRecipe("rtn+act-clip", base);
  CHECK(recipe.config.a_clip_search);
  const SettingList settings = recipe.Settings();
  CHECK(std::find(settings.begin(), settings.end(),
                  std::pair<std::string, std::string>{"a_clip_search", "true"}) != settings.end());
  CHECK(std::find(settings.begin(), settings.end(),
                  std::pair<std::string, std::string>{"a_clip_min", "0.5"}) != settings.end());
  const RecipeResult rr = ApplyRecipe(fp, recipe, calib);
  const std::vector<float> grid = ActClipGrid(0.5f);
  int clipped = 0, searched = 0;
  for (const LinearReport& lr : rr.report.linears) {
    if (lr.layer < 0) continue;  // the lm_head stays float
    INFO("layer " << lr.layer << " " << lr.format);
    REQUIRE(lr.act_clip_errors.size() == grid.size());
    const float clip = grid[BestActClip(lr.act_clip_errors)];
    const auto* a =
        dynamic_cast<const ActQuantLinear*>(LinearAt(rr.quantized, lr.layer, lr.proj).get());
    REQUIRE(a != nullptr);
    CHECK(a->act().clip == clip);
    CHECK(lr.act_clip_errors[BestActClip(lr.act_clip_errors)] <= lr.act_clip_errors[0]);
    ++searched;
    if (clip < 1.0f) ++clipped;
  }
  CHECK(searched == 2 * 7);
  CHECK(clipped > 0);
  // The errors the search recorded for layer 0's q_proj are the ones measured independently on
  // that linear's calibration inputs (layer 0 reads the float embeddings' norm).
  Capture cap(Site::kAttnInput, 0);
  for (const Window& w : calib) {
    Mat h = Embed(fp, w.tokens);
    ForwardBlock(fp, 0, h, &cap);
  }
  const LinearReport& q0 = rr.report.linears.front();
  REQUIRE((q0.layer == 0 && q0.proj == Proj::kQ));
  const Mat wq = FloatWeightOf(*LinearAt(fp, 0, Proj::kQ)).w;
  const auto* a = dynamic_cast<const ActQuantLinear*>(LinearAt(rr.quantized, 0, Proj::kQ).get());
  const Mat wq_deq = dynamic_cast<const QuantWeightLinear&>(*a->inner()).weight()->Dequantize();
  for (size_t i = 0; i < grid.size(); ++i) {
    double e = 0;
    for (const Mat& x : cap.seen) {
      Mat xq = x;
      FakeQuantRowsRef(xq, ActQuantSpec{4, grid[i]});
      e += ((xq * wq_deq.transpose()).cast<double>() - (x * wq.transpose()).cast<double>())
               .squaredNorm();
    }
    CHECK(q0.act_clip_errors[i] == Approx(e).epsilon(1e-4));
  }
  // Without calibration text the search is refused, naming what needs it.
  CHECK_THROWS_WITH(ApplyRecipe(fp, recipe, {}), Catch::Contains("activation clip search"));
  // The search lowers the whole model's error on its calibration text vs no clipping.
  QuantConfig none = base;
  const RecipeResult plain = ApplyRecipe(fp, MakeRecipe("rtn", none), calib);
  double e_plain = 0, e_clip = 0;
  for (const Window& w : calib) {
    const Mat f = Forward(fp, w.tokens);
    e_plain += (Forward(plain.quantized, w.tokens) - f).squaredNorm();
    e_clip += (Forward(rr.quantized, w.tokens) - f).squaredNorm();
  }
  INFO("logit error: a_clip 1 " << e_plain << ", searched " << e_clip);
  CHECK(e_clip < e_plain);
}

TEST_CASE(
    "AsymmetricRetarget gives the least-squares fit of the float output from quantized inputs",
    "[quant][act-clip]") {
  const Mat xf = RandomMat(200, 16, 21);
  const Mat xq = xf + RandomMat(200, 16, 22, 0.2f);  // the quantized model's inputs, perturbed
  const Mat w = RandomMat(8, 16, 23);
  HessianAccumulator acc(16);
  acc.Add(xq);
  const Eigen::MatrixXd h = acc.H();
  const Eigen::MatrixXd p = AsymmetricRetarget(h, {xf}, {xq}, 1e-9);
  const Eigen::MatrixXd wd = w.cast<double>(), w2 = wd + wd * p;
  const Eigen::MatrixXd target = xf.cast<double>() * wd.transpose();
  auto err = [&](const Eigen::MatrixXd& m) {
    return (target - xq.cast<double>() * m.transpose()).squaredNorm();
  };
  INFO("error with W " << err(wd) << ", with the retargeted W' " << err(w2));
  CHECK(err(w2) < err(wd));
  // The normal equations hold: the residual is orthogonal to the quantized inputs.
  const Eigen::MatrixXd grad =
      xq.cast<double>().transpose() * (target - xq.cast<double>() * w2.transpose());
  CHECK(grad.cwiseAbs().maxCoeff() < 1e-6 * target.cwiseAbs().maxCoeff() * 200);
  // A distortion a linear map undoes (X_q = X_f A): W' reproduces the float output exactly.
  const Mat a = Mat::Identity(16, 16) + RandomMat(16, 16, 24, 0.1f);
  const Mat xa = xf * a;
  HessianAccumulator acc_a(16);
  acc_a.Add(xa);
  const Eigen::MatrixXd pa = AsymmetricRetarget(acc_a.H(), {xf}, {xa}, 1e-12);
  const Eigen::MatrixXd wa = wd + wd * pa;
  const double before = (target - xa.cast<double>() * wd.transpose()).squaredNorm();
  const double after = (target - xa.cast<double>() * wa.transpose()).squaredNorm();
  INFO("linear distortion: error " << before << " -> " << after);
  CHECK(after < 1e-6 * before);
  // Equal inputs: nothing to correct.
  CHECK(AsymmetricRetarget(h, {xq}, {xq}, 0.01).cwiseAbs().maxCoeff() == 0.0);
}

TEST_CASE("+seq needs GPTQ or +act-clip and is recorded", "[quant][act-clip][recipe]") {
  QuantConfig base;
  base.a_bits = 4;
  CHECK_THROWS_WITH(MakeRecipe("rotate+seq", base), Catch::Contains("+seq"));
  const SettingList s = MakeRecipe("rotate-gptq+seq", base).Settings();
  CHECK(std::find(s.begin(), s.end(), std::pair<std::string, std::string>{"seq_calib", "true"}) !=
        s.end());
  CHECK_NOTHROW(MakeRecipe("rotate+act-clip+seq", base));
}
