#include <catch2/catch.hpp>
#include <cmath>

#include "calib/quant_error.h"
#include "model/model.h"
#include "model/random_weights.h"
#include "quant/quantize_model.h"
#include "tests/test_util.h"

using namespace sq;
using sq::test::RandomWindows;
using sq::test::SmallConfig;

namespace {
}  // namespace

TEST_CASE("KlDivergence matches a hand computation and is 0 for equal rows", "[quant]") {
  const float a[3] = {0.0f, std::log(2.0f), std::log(5.0f)};  // p = 1/8, 2/8, 5/8
  const float b[3] = {0.0f, 0.0f, 0.0f};                       // q = 1/3 each
  double expect = 0;
  for (double p : {1 / 8.0, 2 / 8.0, 5 / 8.0}) expect += p * std::log(p * 3);
  CHECK(KlDivergence(a, b, 3) == Approx(expect).epsilon(1e-6));  // float logits
  CHECK(KlDivergence(a, a, 3) == 0.0);
}

TEST_CASE("EvalQuantized: a model against itself loses nothing", "[quant]") {
  const ModelConfig c = SmallConfig();
  const Model fp = BuildDenseModel(c, RandomWeights(c, 1));
  const auto ws = RandomWindows(3, 20, c.vocab, 2);
  const CompareResult r = EvalQuantized(fp, fp, ws);
  CHECK(r.tokens == 3 * 19);
  CHECK(r.quant.ppl == r.fp.ppl);  // the same NLL formula, bit for bit
  CHECK(r.quant.ppl_stderr == r.fp.ppl_stderr);
  CHECK(r.kld_mean == 0.0);
  CHECK(r.top1 == 1.0);
  CHECK(r.linears.empty());  // nothing was replaced
}

TEST_CASE("EvalQuantized: 4-bit loses more than 8-bit, by KL, top-1 and SQNR", "[quant]") {
  const ModelConfig c = SmallConfig();
  const Model fp = BuildDenseModel(c, RandomWeights(c, 3));
  const auto ws = RandomWindows(3, 32, c.vocab, 4);
  QuantConfig cfg;
  cfg.w_bits = 8;
  cfg.a_bits = 8;
  const CompareResult r8 = EvalQuantized(fp, QuantizeModel(fp, cfg, {}), ws);
  cfg.w_bits = 4;
  cfg.a_bits = 4;
  const CompareResult r4 = EvalQuantized(fp, QuantizeModel(fp, cfg, {}), ws);
  CHECK(r8.kld_mean > 0);
  CHECK(r4.kld_mean > 10 * r8.kld_mean);
  CHECK(r4.kld_p99 >= r4.kld_mean);
  CHECK(r4.kld_max >= r4.kld_p99);
  CHECK(r4.top1 <= r8.top1);
  REQUIRE(r4.linears.size() == static_cast<size_t>(7 * c.n_layers));  // lm_head stays float
  REQUIRE(r8.linears.size() == r4.linears.size());
  for (size_t i = 0; i < r4.linears.size(); ++i) {
    CHECK(r4.linears[i].layer == r8.linears[i].layer);
    CHECK(r4.linears[i].proj == r8.linears[i].proj);
    CHECK(r8.linears[i].sqnr_db > r4.linears[i].sqnr_db + 12);  // ~6 dB per bit
    CHECK(r4.linears[i].sqnr_db > 5);
  }
  CHECK(r4.linears.front().layer == 0);
  CHECK(r4.linears.front().proj == Proj::kQ);
  CHECK(r4.linears.back().proj == Proj::kDown);
}
