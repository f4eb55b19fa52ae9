// Numerics: NaN / Inf weights are refused by name before quantization; all-zero weight rows,
// groups and activation rows quantize to exact zeros (a zero scale never divides).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "core/error.h"
#include "calib/eval.h"
#include "model/model.h"
#include "model/random_weights.h"
#include "quant/quantize_model.h"
#include "quant/quantizer.h"
#include "tests/test_util.h"

using namespace sq;
using Catch::Matchers::Contains;

namespace {

ModelConfig Tiny() {
  return test::SmallConfig({.hidden = 32, .intermediate = 48, .n_layers = 2, .n_heads = 2,
                           .n_kv_heads = 2, .head_dim = 16, .vocab = 40, .max_position = 32});
}

// Writes `v` into element (r, c) of an F32 weight owned by RandomWeights' storage.
void Poke(const TensorView& w, int r, int c, float v) {
  REQUIRE(w.dtype == DType::kF32);
  float* p = const_cast<float*>(reinterpret_cast<const float*>(w.data));
  p[static_cast<size_t>(r) * w.shape[1] + c] = v;
}

}  // namespace

TEST_CASE("NaN or Inf in a weight is refused with its layer and tensor", "[hardening]") {
  const ModelConfig c = Tiny();
  QuantConfig cfg;
  cfg.w_bits = 4;
  {
    ModelWeights w = RandomWeights(c, 1);
    Poke(w.layers[1].wq, 3, 5, std::numeric_limits<float>::quiet_NaN());
    const Model m = BuildDenseModel(c, w);
    REQUIRE_THROWS_WITH(QuantizeModel(m, cfg, {}),
                        Contains("layer 1 attn_q weight [32, 32] has nan at [3, 5]"));
  }
  {
    ModelWeights w = RandomWeights(c, 2);
    Poke(w.layers[0].w_down, 7, 0, -std::numeric_limits<float>::infinity());
    const Model m = BuildDenseModel(c, w);
    REQUIRE_THROWS_WITH(QuantizeModel(m, cfg, {}), Contains("layer 0 ffn_down"));
    REQUIRE_THROWS_WITH(QuantizeModel(m, cfg, {}), Contains("-inf at [7, 0]"));
  }
  {
    const Model m = BuildDenseModel(c, RandomWeights(c, 3));  // the same path, finite weights
    REQUIRE_NOTHROW(QuantizeModel(m, cfg, {}));
  }
}

TEST_CASE("all-zero weight rows and groups quantize to zeros", "[hardening]") {
  Mat w = Mat::Random(6, 64);
  w.row(2).setZero();
  w.block(4, 32, 1, 32).setZero();  // one all-zero group of 32
  for (int group : {0, 32}) {
    for (bool sym : {true, false}) {
      for (bool search : {false, true}) {
        const QuantizedWeight q = QuantizeRtn(w, WeightQuantSpec{4, group, sym, search});
        const Mat d = q.Dequantize();
        INFO("group " << group << " sym " << sym << " search " << search);
        REQUIRE(d.allFinite());
        REQUIRE(d.row(2).isZero(0));
        if (group == 32) REQUIRE(d.block(4, 32, 1, 32).isZero(0));
        REQUIRE((d - w).cwiseAbs().maxCoeff() < 0.2);  // the other rows are still quantized
      }
    }
  }
}

TEST_CASE("all-zero activation rows fake-quantize to zeros", "[hardening]") {
  Mat x = Mat::Random(4, 16);
  x.row(1).setZero();
  for (Mat y : {x, x}) {
    FakeQuantRows(y, ActQuantSpec{4, 1.0f});
    REQUIRE(y.allFinite());
    REQUIRE(y.row(1).isZero(0));
    Mat r = x;
    FakeQuantRowsRef(r, ActQuantSpec{4, 0.9f});
    REQUIRE(r.allFinite());
    REQUIRE(r.row(1).isZero(0));
  }
}

TEST_CASE("a NaN weight makes eval name the layer where NaN first appears", "[hardening]") {
  const ModelConfig c = Tiny();
  ModelWeights w = RandomWeights(c, 4);
  Poke(w.layers[1].w_up, 0, 0, std::numeric_limits<float>::quiet_NaN());
  const Model m = BuildDenseModel(c, w);
  Window win;
  win.tokens = {1, 5, 7, 9, 11};
  REQUIRE_THROWS_WITH(EvaluatePerplexity(m, {win}), Contains("first NaN/Inf: down_input of layer 1"));
  // The same window through the finite model scores normally.
  const Model ok = BuildDenseModel(c, RandomWeights(c, 4));
  REQUIRE(std::isfinite(EvaluatePerplexity(ok, {win}).nll));
}
