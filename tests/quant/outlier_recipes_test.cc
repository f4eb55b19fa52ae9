// The recipes against a model with planted extremes: a massive activation on BOS (an FFN neuron
// of layer 1 writes > 1000 into one residual channel), a residual sink (one channel 40 on every
// token with norm weights 0.005), and two outlier channels at every linear input (norm weights
// 25 with 1/25 reader columns, the LLM.int8() kind). Rotation must flatten the linear inputs and
// cut the W4A4 loss.
#include <catch2/catch.hpp>
#include <functional>
#include <random>

#include "calib/quant_error.h"
#include "model/random_weights.h"
#include "quant/input_ratio.h"
#include "quant/norm_fold.h"
#include "quant/quant_linear.h"
#include "quant/recipe.h"
#include "quant/rotate.h"
#include "quant/sink_aware.h"
#include "tests/test_util.h"

using namespace sq;

namespace {

constexpr int kBos = 1;
constexpr int kTrigger = 20, kMassive = 33, kNeuron = 77, kSink = 45;
constexpr int kOutlierChannels[] = {7, 51};

void Edit(ModelWeights& w, TensorView& slot, const std::function<void(Mat&)>& fn) {
  Mat m = ToMat(slot);
  fn(m);
  slot = w.Own(m, slot.shape);
}

Model PlantedModel(bool residual_sink) {
  ModelConfig c =
      test::SmallConfig({.hidden = 64, .intermediate = 128, .n_layers = 3, .n_heads = 4,
                         .n_kv_heads = 2, .head_dim = 16, .vocab = 32, .max_position = 128});
  c.bos_id = kBos;
  ModelWeights w = RandomWeights(c, 4);
  Edit(w, w.embed, [&](Mat& e) {
    e.col(kTrigger).setZero();
    e.row(kBos).setZero();
    e(kBos, kTrigger) = 30;            // BOS is one-hot on the trigger channel
    if (residual_sink) e.col(kSink).setConstant(40);  // large on every token
  });
  for (int l = 0; l <= 1; ++l) Edit(w, w.layers[l].wo, [&](Mat& m) { m.row(kTrigger).setZero(); });
  Edit(w, w.layers[0].w_down, [&](Mat& m) { m.row(kTrigger).setZero(); });
  LayerWeights& L1 = w.layers[1];
  for (TensorView* gu : {&L1.w_gate, &L1.w_up}) {
    Edit(w, *gu, [&](Mat& m) {
      m.row(kNeuron).setZero();
      m(kNeuron, kTrigger) = 3;
    });
  }
  Edit(w, L1.w_down, [&](Mat& m) {
    m.col(kNeuron).setZero();
    m(kMassive, kNeuron) = 6;
  });
  auto norm = [&](TensorView& g) {
    Edit(w, g, [&](Mat& v) {
      if (residual_sink) v(kSink) = 0.005f;
      for (int ch : kOutlierChannels) v(ch) = 25;
    });
  };
  // The outlier channels' readers have small weights (the input is 25x, the product is not),
  // as in real checkpoints: the error is in the activation's int4 scale, not in the output.
  auto small_columns = [&](TensorView& r) {
    Edit(w, r, [&](Mat& m) {
      for (int ch : kOutlierChannels) m.col(ch) /= 25;
    });
  };
  for (LayerWeights& L : w.layers) {
    norm(L.attn_norm);
    norm(L.ffn_norm);
    for (TensorView* r : {&L.wq, &L.wk, &L.wv, &L.w_gate, &L.w_up}) small_columns(*r);
  }
  if (residual_sink) Edit(w, w.final_norm, [&](Mat& v) { v(kSink) = 0.005f; });
  return BuildDenseModel(c, w);
}

std::vector<Window> Windows(int n, int T, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> id(2, 31);
  std::vector<Window> out(n);
  for (Window& w : out) {
    w.tokens.push_back(kBos);
    while (static_cast<int>(w.tokens.size()) < T) w.tokens.push_back(id(rng));
  }
  return out;
}

CompareResult RunRecipe(const Model& fp, const std::string& method,
                        const std::vector<Window>& calib, const std::vector<Window>& eval) {
  QuantConfig q;
  q.w_bits = 4;
  q.a_bits = 4;
  const RecipeResult rr = ApplyRecipe(fp, MakeRecipe(method, q), calib);
  CompareOptions co;
  co.sqnr_windows = 0;
  return EvalQuantized(fp, rr.quantized, eval, co);
}

}  // namespace

TEST_CASE("rotation removes planted outliers at the linear inputs and cuts the W4A4 loss",
          "[quant]") {
  const bool residual_sink = GENERATE(false, true);
  const Model fp = PlantedModel(residual_sink);
  const auto calib = Windows(4, 48, 1), eval = Windows(4, 48, 2);
  // The massive activation is there: BOS's residual channel after layer 1.
  struct Probe : ForwardObserver {
    float v = 0;
    bool Wants(Site s, int l) const override { return s == Site::kResidual && l == 1; }
    void Observe(const Where&, const Mat& x) override { v = x(0, kMassive); }
  } probe;
  Forward(fp, eval[0].tokens, &probe);
  CHECK(std::abs(probe.v) > 1000);

  const TransformedModel rotated = RotateHadamard(FoldNorms(Untransformed(fp)), {.seed = 1});
  const InputRatio before = WorstInput(LinearInputRatios(fp, eval, 0));
  const InputRatio after = WorstInput(LinearInputRatios(BuildModel(rotated), eval, 0));
  INFO("residual sink planted: " << residual_sink);
  INFO("worst input before: " << before.Name() << " ratio " << before.ratio()
                              << " token " << before.token_ratio << "; after: " << after.Name() << " ratio " << after.ratio() << " token " << after.token_ratio);
  CHECK(before.ratio() > 1000);
  CHECK(after.ratio() < before.ratio() / 10);
  CHECK(before.token_ratio > 1000);
  CHECK(after.token_ratio < 10);  // a Gaussian row of 64-128 values: max/median ~ 4-6

  const CompareResult rtn = RunRecipe(fp, "rtn", calib, eval);
  const CompareResult rot = RunRecipe(fp, "rotate", calib, eval);
  INFO("W4A4 KL: rtn " << rtn.kld_mean << ", rotate " << rot.kld_mean << "; ppl fp "
                       << rtn.fp.ppl << " rtn " << rtn.quant.ppl << " rotate " << rot.quant.ppl);
  // With the residual sink every non-sink channel of a norm output is ~5x smaller than unit and
  // the float model is nearly uniform (KL ~1e-4 for both recipes), and folding the 0.005 norm
  // weights exposes the sink channel to the activation quantizer: no claim there (see
  // docs/transforms.md). Without it, the planted outliers dominate the W4A4 loss.
  if (!residual_sink) CHECK(rot.kld_mean < rtn.kld_mean / 4);
}

TEST_CASE("SinkRows keeps position 0 and rows above the ratio", "[quant]") {
  Mat x = Mat::Ones(6, 8);
  x(3, 2) = 100;  // 100 x the median row max of 1
  x(4, 5) = 50;   // below the ratio
  int outliers = -1;
  SinkAwareOptions opt;
  CHECK(SinkRows(x, opt, &outliers) == std::vector<int>{0, 3});
  CHECK(outliers == 1);
  opt.position0 = false;
  opt.ratio = 40;
  CHECK(SinkRows(x, opt, &outliers) == std::vector<int>{3, 4});
  CHECK(outliers == 2);
}

TEST_CASE("sink-aware rows get float activations, the others stay quantized", "[quant]") {
  const bool residual_sink = GENERATE(false, true);
  const Model fp = PlantedModel(residual_sink);
  QuantConfig q;
  q.w_bits = 4;
  q.a_bits = 4;
  q.kv_bits = 4;
  const auto calib = Windows(2, 32, 3);
  const RecipeResult plain = ApplyRecipe(fp, MakeRecipe("rtn", q), calib);
  const RecipeResult sink = ApplyRecipe(fp, MakeRecipe("rtn+sink-aware", q), calib);
  CHECK(MakeRecipe("rtn+sink-aware", q).post == std::vector<std::string>{"sink-aware"});
  CHECK_THROWS_WITH(MakeRecipe("rtn+nothing", q), Catch::Contains("unknown modifier"));
  CHECK_THROWS_WITH(MakeRecipe("sink-aware", q), Catch::Contains("unknown recipe"));

  // Layer 0's q_proj: row 0 (BOS) and the other rows.
  Mat x = Mat::Random(5, 64);
  x(0, 3) = 40;
  Mat y_plain, y_sink, y_float_act;
  LinearAt(plain.quantized, 0, Proj::kQ)->Apply(x, y_plain);
  LinearAt(sink.quantized, 0, Proj::kQ)->Apply(x, y_sink);
  const auto* q4 =
      dynamic_cast<const ActQuantLinear*>(LinearAt(plain.quantized, 0, Proj::kQ).get());
  REQUIRE(q4);
  q4->inner()->Apply(x, y_float_act);  // the same weights, float activations
  // (a 1-row product may round differently from the 5-row one)
  CHECK((y_sink.row(0) - y_float_act.row(0)).cwiseAbs().maxCoeff() < 1e-5f);
  CHECK((y_sink.row(0) - y_plain.row(0)).cwiseAbs().maxCoeff() > 1e-3f);
  CHECK((y_sink.bottomRows(4) - y_plain.bottomRows(4)).cwiseAbs().maxCoeff() == 0.0f);

  // Counting: every linear call keeps row 0; the planted BOS is also found as an outlier row
  // at some inputs, never more than a few rows per window.
  auto counts = FindSinkCounts(sink.quantized);
  REQUIRE(counts);
  CHECK(counts->linear_rows == 5);  // the call above
  counts->linear_rows = counts->linear_pos0 = counts->linear_outlier = 0;
  const auto eval = Windows(2, 40, 4);
  for (const Window& w : eval) Forward(sink.quantized, w.tokens);
  const long calls = counts->linear_rows / 40;
  CHECK(calls == 2 * 3 * 7);  // windows x layers x quantized linears
  CHECK(counts->linear_pos0 == calls);
  CHECK(counts->kv_pos0 == counts->kv_rows / 40);
  INFO(counts->Describe());
  CHECK(counts->linear_outlier < counts->linear_rows / 10);
}
