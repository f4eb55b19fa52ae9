// The learned residual rotation (quant/learn_rotation.h): its objective and gradient, that the
// descent lowers the loss from rotate's Hadamard and stays orthogonal, and that the recipe leaves
// the float model's logits unchanged.
#include "quant/learn_rotation.h"

#include <catch2/catch.hpp>

#include "calib/dataset.h"
#include "model/loader.h"
#include "model/random_weights.h"
#include "quant/norm_fold.h"
#include "quant/recipe.h"
#include "tests/test_paths.h"
#include "tests/test_util.h"

using namespace sq;

namespace {

// Named tolerances: a learned Q is rounded to float once (entries ~1/sqrt(d)); float logits
// after an exact transform, as in transformed_model_test.cc.
constexpr float kOrthogonality = 1e-5f;
constexpr double kInvariance = 1e-4;

double MaxRelLogitDiff(const Model& a, const Model& b, const std::vector<Window>& windows) {
  double worst = 0;
  for (const Window& w : windows) {
    const Mat x = Forward(a, w.tokens), ref = Forward(b, w.tokens);
    worst = std::max<double>(worst, (x - ref).cwiseAbs().maxCoeff() / ref.cwiseAbs().maxCoeff());
  }
  return worst;
}

struct Stories {
  LoadedModel lm = LoadModel(test::RequireShared("models/stories260K/stories260K.bin"), "");
  std::vector<Window> calib =
      MakeWindows(ReadTextFile(test::RequireShared("corpora/tinystories-calib.txt")), *lm.tokenizer,
                  {128, 2000}, "calib");
};

}  // namespace

TEST_CASE("the kurtosis gradient matches finite differences", "[quant][learnrot]") {
  const Mat x = test::RandomMat(40, 16, 1).array().cube().matrix();  // heavy-tailed rows
  const Mat q = Rotation(16, 2).matrix();
  Mat g;
  KurtosisLoss(x, q, &g);
  const double h = 1e-3;
  for (auto [i, j] : {std::pair{0, 0}, {3, 7}, {15, 2}}) {
    Mat up = q, down = q;
    up(i, j) += h;
    down(i, j) -= h;
    const double fd = (KurtosisLoss(x, up) - KurtosisLoss(x, down)) / (2 * h);
    INFO("(" << i << ", " << j << ") analytic " << g(i, j) << " numeric " << fd);
    CHECK(g(i, j) == Approx(fd).epsilon(2e-2).margin(1e-3));
  }
  // A token that is one spike has kurtosis d; a flat token 1.
  Mat spike = Mat::Zero(1, 16), flat = Mat::Ones(1, 16);
  spike(0, 5) = 3;
  CHECK(KurtosisLoss(spike, Mat::Identity(16, 16)) == Approx(16.0));
  CHECK(KurtosisLoss(flat, Mat::Identity(16, 16)) == Approx(1.0));
}

TEST_CASE("the learned rotation lowers the kurtosis from rotate's Hadamard, stays orthogonal",
          "[quant][learnrot]") {
  const Stories s;
  const Model folded = BuildModel(FoldNorms(Untransformed(s.lm.model)));
  const Mat x = CollectResidualInputs(folded, s.calib, 1024);
  REQUIRE(x.rows() > 900);
  REQUIRE(x.rows() <= 1024);
  LearnRotationOptions opt;
  opt.steps = 30;
  opt.seed = 5;
  const LearnedRotation a = LearnRotation(x, opt);
  REQUIRE(a.curve.size() == 31);
  // Step 0 is the Hadamard rotate draws with that seed; accepted steps only ever lower it.
  CHECK(a.curve[0].loss == Approx(KurtosisLoss(x, Rotation(64, 5).matrix())));
  for (size_t i = 1; i < a.curve.size(); ++i) CHECK(a.curve[i].loss <= a.curve[i - 1].loss);
  CHECK(a.curve.back().loss < 0.95 * a.curve[0].loss);
  CHECK(a.curve.back().loss == Approx(KurtosisLoss(x, a.q->matrix())).epsilon(1e-4));
  const Mat& q = a.q->matrix();
  CHECK((q * q.transpose() - Mat::Identity(64, 64)).cwiseAbs().maxCoeff() < kOrthogonality);
  CHECK_FALSE(a.q->is_hadamard());
  CHECK_THAT(a.Summary(), Catch::Contains("(step 0) -> ") && Catch::Contains("(step 30)"));
  // Deterministic: the same samples and seed give the same matrix.
  CHECK((LearnRotation(x, opt).q->matrix().array() == q.array()).all());
}

TEST_CASE("rotate-learned leaves the float logits unchanged", "[quant][learnrot]") {
  const Stories s;
  QuantConfig c;
  c.w_bits = c.a_bits = c.kv_bits = 16;
  c.learn_steps = 10;
  const std::vector<Window> eval(s.calib.begin(), s.calib.begin() + 3);
  const RecipeResult r = ApplyRecipe(s.lm.model, MakeRecipe("rotate-learned", c), s.calib);
  CHECK(MaxRelLogitDiff(r.transformed, s.lm.model, eval) < kInvariance);
  REQUIRE(r.log.size() == 3);  // fold-norms, learn-rotation, rotate
  CHECK_THAT(r.log[1], Catch::StartsWith("learn-rotation(loss "));
  CHECK_THAT(r.log[2], Catch::Contains("residual learned 64"));
  // GatedNorm: the learned Q runs online after every gated norm.
  ModelConfig g = test::SmallConfig({.hidden = 48, .n_layers = 2, .vocab = 40});
  g.gated_norm_rank = 4;
  const Model gm = BuildDenseModel(g, RandomWeights(g, 3));
  const auto windows = test::RandomWindows(3, 20, g.vocab, 4);
  const RecipeResult rg = ApplyRecipe(gm, MakeRecipe("rotate-learned", c), windows);
  CHECK(MaxRelLogitDiff(rg.transformed, gm, windows) < kInvariance);
  CHECK_THAT(rg.log[2], Catch::Contains("online after every GatedNorm learned 48"));
}

TEST_CASE("rotate-learned records its settings and refuses to run without calibration text",
          "[quant][learnrot]") {
  QuantConfig c;
  c.learn_steps = 7;
  const SettingList s = MakeRecipe("rotate-learned-gptq+kv-rotate", c).Settings();
  CHECK(std::find(s.begin(), s.end(), std::pair<std::string, std::string>{"learn_steps", "7"}) !=
        s.end());
  CHECK(std::find(s.begin(), s.end(), std::pair<std::string, std::string>{"gptq", "true"}) !=
        s.end());
  const Stories st;
  CHECK_THROWS_WITH(ApplyRecipe(st.lm.model, MakeRecipe("rotate-learned", c), {}),
                    Catch::Contains("rotate-learned needs calibration text"));
}
