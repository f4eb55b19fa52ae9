// "Float logits unchanged": every exact transform must leave the model's logits within
// kInvariance (max |delta| / max |logit|) on random gated models and on real text.
#include <catch2/catch.hpp>

#include "calib/dataset.h"
#include "formats/hf_config.h"
#include "model/loader.h"
#include "model/random_weights.h"
#include "quant/norm_fold.h"
#include "quant/quantize_model.h"
#include "quant/rotate.h"
#include "quant/smooth.h"
#include "tests/model/arch_cases.h"
#include "tests/test_paths.h"
#include "tests/test_util.h"

using namespace sq;
using sq::test::RandomNormsModel;
using sq::test::RandomWindows;

namespace {

// Named tolerance of the issue: max relative logit difference below 1e-4.
constexpr double kInvariance = 1e-4;

double MaxRelDiff(const Mat& a, const Mat& ref) {
  return (a - ref).cwiseAbs().maxCoeff() / std::max(1e-12f, ref.cwiseAbs().maxCoeff());
}

double MaxRelLogitDiff(const Model& a, const Model& b, const std::vector<Window>& windows) {
  double worst = 0;
  for (const Window& w : windows) {
    worst = std::max(worst, MaxRelDiff(Forward(a, w.tokens), Forward(b, w.tokens)));
  }
  return worst;
}

// A small model with GQA; optionally gated attention and GatedNorm.
Model GatedTestModel(bool attn_gate, int gated_norm_rank, int intermediate, bool bias) {
  ModelConfig c = test::SmallConfig({.hidden = 48,
                                     .intermediate = intermediate,
                                     .n_layers = 2,
                                     .n_heads = 4,
                                     .n_kv_heads = 2,
                                     .head_dim = 12,
                                     .vocab = 40,
                                     .max_position = 64});
  c.attn_output_gate = attn_gate;
  c.gated_norm_rank = gated_norm_rank;
  c.qkv_bias = bias;
  return RandomNormsModel(c);
}

void CheckAllNormsOne(const TransformedModel& t) {
  for (const LayerWeights& L : t.weights.layers) {
    CHECK(IsOnes(L.attn_norm));
    CHECK(IsOnes(L.ffn_norm));
  }
  CHECK(IsOnes(t.weights.final_norm));
}

// Runs every exact transform and recipe chain on `m`, checking the logits each time.
void CheckInvariance(const Model& m, const std::vector<Window>& calib,
                     const std::vector<Window>& eval) {
  const TransformedModel base = Untransformed(m);
  const TransformedModel folded = FoldNorms(base);
  CheckAllNormsOne(folded);
  CHECK(MaxRelLogitDiff(BuildModel(folded), m, eval) < kInvariance);

  const ChannelAbsMax stats = CollectChannelAbsMax(m, calib);
  const TransformedModel smoothed = SmoothQuant(base, stats, {});
  CHECK(MaxRelLogitDiff(BuildModel(smoothed), m, eval) < kInvariance);
  // Smoothing changed the weights (it is not trivially the identity).
  CHECK(MaxRelDiff(ToMat(smoothed.weights.layers[0].wq), ToMat(m.weights.layers[0].wq)) > 1e-3);

  const TransformedModel rotated = RotateHadamard(folded, {.seed = 3});
  CHECK_FALSE(rotated.online.empty());
  CHECK(MaxRelLogitDiff(BuildModel(rotated), m, eval) < kInvariance);

  const TransformedModel smooth_rotated = RotateHadamard(FoldNorms(smoothed), {.seed = 4});
  CHECK(MaxRelLogitDiff(BuildModel(smooth_rotated), m, eval) < kInvariance);
  CHECK(smooth_rotated.steps.size() == 3);

  // kv-rotate alone and after rotate (the recipe order): q.k and the folded values are exact.
  for (const TransformedModel* in : {&base, &rotated}) {
    const TransformedModel kv = RotateKvCache(*in, 5);
    CHECK(MaxRelLogitDiff(BuildModel(kv), m, eval) < kInvariance);
  }
}

}  // namespace

TEST_CASE("Transforms keep logits: gated attention + GatedNorm random model", "[quant]") {
  // intermediate 40 = 2 x Paley 20; 52 has no construction (random orthogonal).
  for (int f : {40, 52}) {
    INFO("intermediate " << f);
    const Model m = GatedTestModel(true, 4, f, false);
    CheckInvariance(m, RandomWindows(3, 24, 40, 1), RandomWindows(2, 32, 40, 2));
    // The gated attention output cannot be rotated through: o_proj's rotation is online.
    const TransformedModel r = RotateHadamard(FoldNorms(Untransformed(m)), {});
    CHECK(r.online.layers[0].o_in);
    CHECK(r.online.layers[0].attn_in);  // GatedNorm: readers rotate online after the gate
    CHECK(r.online.head_in);
  }
}

TEST_CASE("Transforms keep logits: plain GQA model with q/k/v biases", "[quant]") {
  const Model m = GatedTestModel(false, 0, 40, true);
  CheckInvariance(m, RandomWindows(3, 24, 40, 3), RandomWindows(2, 32, 40, 4));
  const TransformedModel r = RotateHadamard(FoldNorms(Untransformed(m)), {});
  CHECK_FALSE(r.online.layers[0].o_in);     // per-head rotation folded into v and o
  CHECK_FALSE(r.online.layers[0].attn_in);  // the residual stream itself is rotated
  CHECK(r.online.layers[0].down_in);
  // The embedding is rotated: its rows keep their norms but not their entries.
  const Mat e0 = ToMat(m.weights.embed), e1 = ToMat(r.weights.embed);
  CHECK(std::abs(e0.row(3).norm() - e1.row(3).norm()) < 1e-4f);
  CHECK(MaxRelDiff(e1, e0) > 0.1);
}

TEST_CASE("Transforms keep logits: gated attention without GatedNorm", "[quant]") {
  const Model m = GatedTestModel(true, 0, 40, false);
  CheckInvariance(m, RandomWindows(3, 24, 40, 5), RandomWindows(2, 32, 40, 6));
}

TEST_CASE("Transforms keep logits: sliding window, Phi-3 partial rotary, SmolLM3 NoPE",
          "[quant][arch]") {
  // Windows of 4-7 keys against 24-32 tokens. A rotation never touches the rotary dims apart
  // from the per-head v/o one, which RoPE does not reach: partial rotary and NoPE change
  // nothing the transforms rely on, and the down_proj rotation stays online as always.
  for (const test::ArchCase& a : test::ArchCases()) {
    SECTION(a.name) {
      const Model m = RandomNormsModel(HfConfigFromJson(a.config, a.name));
      const int V = m.config.vocab;
      CheckInvariance(m, RandomWindows(3, 24, V, 7), RandomWindows(2, 32, V, 8));
      const TransformedModel r = RotateHadamard(FoldNorms(Untransformed(m)), {});
      CHECK(r.online.layers[0].down_in);
      // Gemma: the residual rotation runs after each post-norm, o_proj/down_proj stay unrotated.
      CHECK((r.online.layers[0].post_out != nullptr) == m.config.post_norms);
      CHECK(r.config.layer_window == m.config.layer_window);
      CHECK(r.config.rope_dim() == m.config.rope_dim());
    }
  }
}

// What the KV quantizer sees after kv-rotate: keys (and, without gated attention, values) in
// the rotated basis. Same float logits, different KV4 logits, and the rotation survives a
// round trip through a built Model (as the layer pipeline and the exporter read it back).
TEST_CASE("kv-rotate rotates what the KV quantizer sees, not the float model", "[quant]") {
  for (bool gate : {false, true}) {
    INFO("gated attention " << gate);
    const Model m = GatedTestModel(gate, 0, 40, false);
    const TransformedModel kv = RotateKvCache(Untransformed(m), 5);
    const Model built = BuildModel(kv);
    REQUIRE(built.linears[1].qk);
    CHECK(FindOnlineRotations(built).layers[1].qk == kv.online.layers[1].qk);
    // Values rotate in v_proj; o_proj absorbs the inverse, or with the gate it runs online.
    const LayerWeights &a = kv.weights.layers[0], &b = m.weights.layers[0];
    CHECK(MaxRelDiff(ToMat(a.wv), ToMat(b.wv)) > 0.1);
    const double dout = MaxRelDiff(ToMat(a.wo), ToMat(b.wo));
    CHECK((gate ? dout == 0.0 : dout > 0.1));
    CHECK((built.linears[0].attn_out != nullptr) == gate);
    QuantConfig kv4;
    kv4.w_bits = 16;
    kv4.kv_bits = 4;
    const auto eval = RandomWindows(2, 32, 40, 8);
    const double diff =
        MaxRelLogitDiff(QuantizeModel(built, kv4, {}), QuantizeModel(m, kv4, {}), eval);
    CHECK(diff > 1e-3);
    CHECK_THROWS_WITH(RotateKvCache(kv, 6), Catch::Contains("already rotated"));
  }
}

TEST_CASE("Transforms refuse the wrong order", "[quant]") {
  const Model m = GatedTestModel(false, 0, 40, false);
  const TransformedModel base = Untransformed(m);
  CHECK_THROWS_WITH(RotateHadamard(base, {}), Catch::Contains("fold norms first"));
  const TransformedModel r = RotateHadamard(FoldNorms(base), {});
  CHECK_THROWS_WITH(FoldNorms(r), Catch::Contains("before rotating"));
  CHECK_THROWS_WITH(SmoothQuant(r, CollectChannelAbsMax(m, RandomWindows(1, 8, 40, 1)), {}),
                    Catch::Contains("before rotating"));
}

TEST_CASE("Transforms keep logits on stories260K with real text", "[quant]") {
  LoadedModel lm = LoadModel(test::RequireShared("models/stories260K/stories260K.bin"), "");
  WindowOptions o;
  o.ctx = 128;
  auto calib = MakeWindows(ReadTextFile(test::RequireShared("corpora/tinystories-calib.txt")),
                           *lm.tokenizer, o, "calib");
  auto eval = MakeWindows(ReadTextFile(test::RequireShared("corpora/tinystories-valid.txt")),
                          *lm.tokenizer, o, "valid");
  calib.resize(8);
  eval.resize(4);
  CheckInvariance(lm.model, calib, eval);
}

TEST_CASE("Transforms keep logits on bytelm-austen-gatednorm with real text", "[quant]") {
  LoadedModel lm = LoadModel(test::RequireShared("models/bytelm-austen-gatednorm"), "");
  REQUIRE(lm.model.config.attn_output_gate);
  REQUIRE(lm.model.config.gated_norm_rank == 16);
  WindowOptions o;
  o.ctx = 256;
  auto text = MakeWindows(ReadTextFile(test::RequireShared("corpora/austen-emma-valid.txt")),
                          *lm.tokenizer, o, "emma");
  std::vector<Window> calib(text.begin() + 10, text.begin() + 14), eval(text.begin(), text.begin() + 2);
  CheckInvariance(lm.model, calib, eval);
}
