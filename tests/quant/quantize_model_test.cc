#include <catch2/catch.hpp>

#include "model/model.h"
#include "model/random_weights.h"
#include "quant/quant_linear.h"
#include "quant/quantize_model.h"
#include "tests/test_util.h"

using namespace sq;
using sq::test::RandomWindows;
using sq::test::SmallConfig;

namespace {
// Mean squared difference of the final hidden states (lm_head input) over windows.
double HiddenError(const Model& fp, const Model& q, const std::vector<Window>& ws) {
  double err = 0, ref = 0;
  for (const Window& w : ws) {
    Mat a = Embed(fp, w.tokens), b = a;
    for (int l = 0; l < fp.config.n_layers; ++l) {
      ForwardBlock(fp, l, a, nullptr);
      ForwardBlock(q, l, b, nullptr);
    }
    err += (a - b).squaredNorm();
    ref += a.squaredNorm();
  }
  return err / ref;
}
}  // namespace

TEST_CASE("GPTQ layer by layer beats RTN on a random model's hidden states", "[quant]") {
  const ModelConfig c = SmallConfig(
      {.hidden = 64, .intermediate = 96, .n_layers = 3, .head_dim = 16, .vocab = 64,
       .max_position = 128});
  const Model fp = BuildDenseModel(c, RandomWeights(c, 3));
  const auto calib = RandomWindows(8, 64, c.vocab, 4);
  const auto eval = RandomWindows(4, 64, c.vocab, 5);  // different tokens
  QuantConfig cfg;
  cfg.w_bits = 4;
  cfg.w_group = 32;
  const Model rtn = QuantizeModel(fp, cfg, calib);
  cfg.gptq = true;
  QuantizeReport rep;
  const Model gptq = QuantizeModel(fp, cfg, calib, &rep);
  CHECK(rep.calib_windows == 8);
  CHECK(rep.calib_tokens == 8 * 64);
  CHECK(rep.hidden_state_bytes == size_t(8) * 64 * 64 * 4);
  for (const LinearReport& lr : rep.linears) {
    if (lr.proj == Proj::kLmHead) continue;
    CHECK(lr.dead_columns == 0);
    CHECK(lr.format.find("gptq") != std::string::npos);
  }
  const double e_rtn = HiddenError(fp, rtn, eval), e_gptq = HiddenError(fp, gptq, eval);
  INFO("relative hidden-state error: rtn " << e_rtn << ", gptq " << e_gptq);
  CHECK(e_gptq < e_rtn);
  CHECK_THROWS(QuantizeModel(fp, cfg, {}));  // GPTQ without calibration text
}

TEST_CASE("QuantConfig: projections parse, settings list every field, bad bits are refused",
          "[quant]") {
  CHECK(ParseProjList("lm_head,down") == std::vector<Proj>{Proj::kLmHead, Proj::kDown});
  CHECK(ParseProjList("none").empty());
  CHECK(ParseProj("attn_q") == Proj::kQ);
  CHECK_THROWS(ParseProj("qq"));
  QuantConfig cfg;
  CHECK(cfg.Settings().size() == 14);
  cfg.w_bits = 5;
  CHECK_NOTHROW(cfg.Validate());
  cfg.w_bits = 12;
  CHECK_THROWS(cfg.Validate());
  cfg.w_bits = 4;
  cfg.a_clip = 1.5f;
  CHECK_THROWS(cfg.Validate());
}
