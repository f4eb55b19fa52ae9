#include <catch2/catch.hpp>
#include <random>

#include "model/model.h"
#include "model/random_weights.h"
#include "quant/int4_linear.h"
#include "quant/quantize_model.h"

using namespace sq;

namespace {
Mat RandomMat(int rows, int cols, uint64_t seed, float stddev = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  Mat m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = dist(rng);
  return m;
}

ModelConfig SmallConfig() {
  ModelConfig c;
  c.hidden = 32;
  c.intermediate = 48;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 8;
  c.vocab = 40;
  c.max_position = 64;
  c.qkv_bias = true;
  return c;
}

std::vector<int> Tokens(int n, int vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int> t(n);
  for (int& x : t) x = static_cast<int>(rng() % vocab);
  return t;
}
}  // namespace

TEST_CASE("Int4Linear computes fakequant(x) deq(W)^T + b", "[quant]") {
  const Mat w = RandomMat(20, 48, 1), x = RandomMat(5, 48, 2);
  Vec b = RandomMat(20, 1, 3).col(0);
  auto qw = std::make_shared<const QuantizedWeight>(QuantizeRtn(w, {4, 16, true, true}));
  const Int4Linear lin(qw, {4, 0.9f}, b);
  Mat y;
  lin.Apply(x, y);
  Mat xq = x;
  FakeQuantRowsRef(xq, {4, 0.9f});
  const Mat expect = (xq * qw->Dequantize().transpose()).rowwise() + b.transpose();
  CHECK((y - expect).cwiseAbs().maxCoeff() < 1e-5f);
  CHECK(lin.in_features() == 48);
  CHECK(lin.out_features() == 20);
}

TEST_CASE("W16A16 through Int4Linear's code path gives the float logits exactly", "[quant]") {
  const ModelConfig c = SmallConfig();
  const Model fp = BuildDenseModel(c, RandomWeights(c, 5));
  Model q = fp;
  for (int l = 0; l < c.n_layers; ++l) {
    for (Role r : LinearRoles()) {
      if (r == Role::kLmHead) continue;
      auto& lin = LinearAt(q, l, r);
      lin = std::make_shared<Int4Linear>(lin, ActQuantSpec{16, 1.0f});
    }
  }
  q.lm_head = std::make_shared<Int4Linear>(q.lm_head, ActQuantSpec{});
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

TEST_CASE("QuantizeModel: RTN W4A4 puts Int4Linear on every linear but the lm_head", "[quant]") {
  const ModelConfig c = SmallConfig();
  const Model fp = BuildDenseModel(c, RandomWeights(c, 7));
  QuantConfig cfg;
  cfg.w_bits = 4;
  cfg.a_bits = 4;
  cfg.w_group = 16;
  cfg.kv_bits = 4;
  QuantizeReport rep;
  const Model q = QuantizeModel(fp, cfg, {}, &rep);
  for (int l = 0; l < c.n_layers; ++l) {
    for (Role r : LinearRoles()) {
      if (r == Role::kLmHead) continue;
      const auto* lin = dynamic_cast<const Int4Linear*>(LinearAt(q, l, r).get());
      REQUIRE(lin != nullptr);
      REQUIRE(lin->weight() != nullptr);
      CHECK(lin->weight()->group == 16);
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
