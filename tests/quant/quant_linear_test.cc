#include <catch2/catch.hpp>

#include "model/model.h"
#include "model/random_weights.h"
#include "quant/online_rotation.h"
#include "quant/quant_linear.h"
#include "quant/quantize_model.h"
#include "tests/test_util.h"

using namespace sq;
using sq::test::RandomWindows;
using sq::test::SmallConfig;
using sq::test::RandomMat;

namespace {
// With q/k/v biases, so the bias path of every linear is exercised.
ModelConfig BiasedConfig() {
  ModelConfig c = SmallConfig({.intermediate = 48, .vocab = 40});
  c.qkv_bias = true;
  return c;
}

std::vector<int> Tokens(int n, int vocab, uint64_t seed) {
  return RandomWindows(1, n, vocab, seed)[0].tokens;
}
}  // namespace

TEST_CASE("ActQuantLinear over QuantWeightLinear computes fakequant(x) deq(W)^T + b", "[quant]") {
  const Mat w = RandomMat(20, 48, 1), x = RandomMat(5, 48, 2);
  Vec b = RandomMat(20, 1, 3).col(0);
  auto qw = std::make_shared<const QuantizedWeight>(QuantizeRtn(w, {4, 16, true, true}));
  const ActQuantLinear lin(std::make_shared<QuantWeightLinear>(qw, b), {4, 0.9f});
  Mat y;
  lin.Apply(x, y);
  Mat xq = x;
  FakeQuantRowsRef(xq, {4, 0.9f});
  const Mat expect = (xq * qw->Dequantize().transpose()).rowwise() + b.transpose();
  CHECK((y - expect).cwiseAbs().maxCoeff() < 1e-5f);
  CHECK(lin.in_features() == 48);
  CHECK(lin.out_features() == 20);
}

TEST_CASE("W16A16 through ActQuantLinear's code path gives the float logits exactly", "[quant]") {
  const ModelConfig c = BiasedConfig();
  const Model fp = BuildDenseModel(c, RandomWeights(c, 5));
  Model q = fp;
  for (int l = 0; l < c.n_layers; ++l) {
    for (Proj p : kAllProjs) {
      if (p == Proj::kLmHead) continue;
      auto& lin = LinearAt(q, l, p);
      lin = std::make_shared<ActQuantLinear>(lin, ActQuantSpec{16, 1.0f});
    }
  }
  q.lm_head = std::make_shared<ActQuantLinear>(q.lm_head, ActQuantSpec{});
  const auto tokens = Tokens(30, c.vocab, 6);
  const Mat a = Forward(fp, tokens), b = Forward(q, tokens);
  CHECK(a == b);  // bit for bit

  // And QuantizeModel with everything at 16 bits leaves the model's output unchanged too.
  QuantConfig cfg;
  cfg.w_bits = 16;
  cfg.a_bits = 16;
  CHECK(Forward(QuantizeModel(fp, cfg, {}), tokens) == a);
  // Turning activation quantization on through the same path does change the logits.
  cfg.a_bits = 4;
  CHECK(Forward(QuantizeModel(fp, cfg, {}), tokens) != a);
}

TEST_CASE("QuantizeModel: RTN W4A4 quantizes every linear but the lm_head", "[quant]") {
  const ModelConfig c = BiasedConfig();
  const Model fp = BuildDenseModel(c, RandomWeights(c, 7));
  QuantConfig cfg;
  cfg.w_bits = 4;
  cfg.a_bits = 4;
  cfg.w_group = 16;
  cfg.kv_bits = 4;
  QuantizeReport rep;
  const Model q = QuantizeModel(fp, cfg, {}, &rep);
  for (int l = 0; l < c.n_layers; ++l) {
    for (Proj p : kAllProjs) {
      if (p == Proj::kLmHead) continue;
      const auto* lin = dynamic_cast<const ActQuantLinear*>(LinearAt(q, l, p).get());
      REQUIRE(lin != nullptr);
      const auto* w = dynamic_cast<const QuantWeightLinear*>(lin->inner().get());
      REQUIRE(w != nullptr);
      CHECK(w->weight()->group == 16);
      CHECK(lin->act().bits == 4);
    }
  }
  CHECK(q.lm_head == fp.lm_head);
  CHECK(q.kv_quant != nullptr);
  CHECK(rep.linears.size() == static_cast<size_t>(c.n_layers * 7 + 1));
  CHECK(rep.kv == "kv4 per-head asym");
  const auto tokens = Tokens(20, c.vocab, 8);
  const Mat a = Forward(fp, tokens), b = Forward(q, tokens);
  CHECK(b.allFinite());
  CHECK(a != b);
}

TEST_CASE("FindWrapped walks a wrapper chain to what holds the weights", "[quant]") {
  const Mat w = RandomMat(8, 16, 11);
  auto owned = MakeOwned(w, {8, 16});
  auto dense = std::make_shared<DenseLinear>(owned->View());
  auto rotated = std::make_shared<OnlineRotation>(
      std::make_shared<ActQuantLinear>(dense, ActQuantSpec{4, 1.0f}),
      std::make_shared<Rotation>(16, 1));
  CHECK(FindWrapped<DenseLinear>(*rotated) == dense.get());
  CHECK(FindWrapped<OnlineRotation>(*rotated) == rotated.get());
  CHECK(FloatWeightOf(*rotated).w == w);
  auto qw = std::make_shared<const QuantizedWeight>(QuantizeRtn(w, {4, 0, true, false}));
  const ActQuantLinear w4a4(std::make_shared<QuantWeightLinear>(qw), {4, 1.0f});
  CHECK(FindWrapped<DenseLinear>(w4a4) == nullptr);
  CHECK(FindWrapped<QuantWeightLinear>(w4a4) == w4a4.inner().get());
  CHECK_THROWS_WITH(FloatWeightOf(w4a4), Catch::Contains("needs a float Linear"));
}
