// The layer-at-a-time recipe pipeline must build the same quantized model as ApplyRecipe: every
// window's logits equal bit for bit, for every recipe, with and without the integer kernels.
#include "quant/recipe_pipeline.h"

#include <catch2/catch.hpp>

#include "calib/dataset.h"
#include "formats/hf_config.h"
#include "model/layer_major.h"
#include "model/loader.h"
#include "model/random_weights.h"
#include "quant/integer_linear.h"
#include "quant/recipe.h"
#include "tests/model/arch_cases.h"
#include "tests/test_paths.h"
#include "tests/test_util.h"

using namespace sq;

namespace {

void RequirePipelineMatches(const LoadedModel& lm, const std::string& method, QuantConfig base,
                            const std::vector<Window>& calib, const std::vector<Window>& eval,
                            bool integer) {
  INFO(method << (integer ? " (integer kernels)" : ""));
  const Recipe recipe = MakeRecipe(method, base);
  RecipeResult rr = ApplyRecipe(lm.model, recipe, calib);
  if (integer) UseIntegerKernels(rr.quantized);
  RecipePipeline pipe(lm.model, recipe, calib, integer);
  CHECK(pipe.log() == rr.log);
  const std::vector<LayerMajorStream> streams = {{&pipe.quantized()}, {&pipe.transformed()}};
  int windows = 0;
  ForwardLayerMajor(streams, TokenSpans(eval), [&](int w, std::span<const Mat> logits) {
    ++windows;
    const Mat q = Forward(rr.quantized, eval[w].tokens), t = Forward(rr.transformed, eval[w].tokens);
    REQUIRE((logits[0].array() == q.array()).all());
    REQUIRE((logits[1].array() == t.array()).all());
  }, {}, pipe.Hooks());
  REQUIRE(windows == static_cast<int>(eval.size()));
  CHECK(pipe.report().weight_bytes == rr.report.weight_bytes);
  CHECK(pipe.report().kv == rr.report.kv);
  CHECK(pipe.report().linears.size() == rr.report.linears.size());
}

// stories260K with short calibration and evaluation windows (a few hundred tokens each).
struct Stories {
  LoadedModel lm = LoadModel(test::RequireShared("models/stories260K/stories260K.bin"), "");
  std::vector<Window> calib =
      MakeWindows(ReadTextFile(test::RequireShared("corpora/tinystories-calib.txt")),
                  *lm.tokenizer, {128, 300}, "calib");
  std::vector<Window> eval =
      MakeWindows(ReadTextFile(test::RequireShared("corpora/tinystories-valid.txt")),
                  *lm.tokenizer, {96, 250}, "valid");
  static QuantConfig W4A4KV4() {
    QuantConfig c;
    c.a_bits = 4;
    c.kv_bits = 4;
    return c;
  }
};

}  // namespace

TEST_CASE("recipe pipeline equals ApplyRecipe on stories260K, every recipe", "[quant][pipeline]") {
  const Stories s;
  const LoadedModel& lm = s.lm;
  const auto &calib = s.calib, &eval = s.eval;
  QuantConfig base = s.W4A4KV4();
  for (const char* m :
       {"rtn", "gptq", "smooth", "rotate", "rotate-gptq", "smooth-rotate", "rotate+sink-aware",
        "gptq+sink-aware", "rotate+kv-rotate", "rotate+act-clip", "rotate-gptq+act-clip",
        "rotate-gptq+kv-rotate+act-clip", "rotate-gptq+seq", "rotate-gptq+act-clip+seq",
        "rtn+outliers", "rotate-gptq+outliers+sink-aware",
        "rotate-gptq+kv-rotate+act-clip+seq+outliers"}) {
    RequirePipelineMatches(lm, m, base, calib, eval, true);
  }
  RequirePipelineMatches(lm, "rotate-gptq", base, calib, eval, false);
  base.keep_float = {};  // the lm_head quantized too (GPTQ on the last layer's states)
  RequirePipelineMatches(lm, "rotate-gptq", base, calib, eval, true);
  // The quantized lm_head's activation clip searched on the last layer's states.
  RequirePipelineMatches(lm, "rotate-gptq+act-clip", base, calib, eval, true);
  base.alt_layers = {1, 3};  // mixed precision: two layers at W8A8
  RequirePipelineMatches(lm, "rotate-gptq", base, calib, eval, true);
  RequirePipelineMatches(lm, "rtn", base, calib, eval, false);
}

TEST_CASE("recipe pipeline equals ApplyRecipe for the learned rotation",
          "[quant][pipeline][learnrot]") {
  // The pipeline samples the residual-stream inputs layer by layer; the same samples must give
  // the same learned Q bit for bit.
  const Stories s;
  const LoadedModel& lm = s.lm;
  const auto &calib = s.calib, &eval = s.eval;
  QuantConfig base = s.W4A4KV4();
  base.learn_steps = 20;
  for (const char* m : {"rotate-learned", "rotate-learned-gptq+kv-rotate+act-clip"}) {
    RequirePipelineMatches(lm, m, base, calib, eval, true);
  }
}

TEST_CASE("recipe pipeline equals ApplyRecipe with per-layer windows, NoPE, partial rotary",
          "[quant][pipeline][arch]") {
  // The pipeline transforms and quantizes one-layer slices: each must keep its own layer's
  // window and RoPE (layer 2 of the first model, layers 1-2 of the second, differ from layer 0).
  for (const test::ArchCase& a : test::ArchCases()) {
    if (a.name != "smollm3_interval_window" && a.name != "qwen2_window" &&
        a.name != "phi3_partial_window") {
      continue;
    }
    INFO(a.name);
    const ModelConfig c = HfConfigFromJson(a.config, a.name);
    LoadedModel lm;
    lm.model = BuildDenseModel(c, RandomWeights(c, 21));
    const auto calib = test::RandomWindows(4, 24, c.vocab, 1);
    const auto eval = test::RandomWindows(2, 24, c.vocab, 2);
    QuantConfig base;
    base.a_bits = 4;
    for (const char* m : {"smooth", "rotate-gptq"}) {
      RequirePipelineMatches(lm, m, base, calib, eval, false);
    }
  }
}

TEST_CASE("recipe pipeline equals ApplyRecipe on bytelm-austen-gatednorm", "[quant][pipeline]") {
  LoadedModel lm = LoadModel(test::RequireShared("models/bytelm-austen-gatednorm"), "");
  const auto text = ReadTextFile(test::RequireShared("corpora/austen-emma-valid.txt"));
  const auto calib = MakeWindows(text.substr(0, 20000), *lm.tokenizer, {64, 200}, "calib");
  const auto eval = MakeWindows(text.substr(20000), *lm.tokenizer, {64, 130}, "valid");
  QuantConfig base;
  base.a_bits = 4;
  for (const char* m : {"rotate", "smooth-rotate", "rotate-gptq"}) {
    RequirePipelineMatches(lm, m, base, calib, eval, true);
  }
}

TEST_CASE("a kept pipeline (quantize's export path) equals ApplyRecipe, float weights too",
          "[quant][pipeline]") {
  LoadedModel lm = LoadModel(test::RequireShared("models/stories260K/stories260K.bin"), "");
  const auto calib = MakeWindows(ReadTextFile(test::RequireShared("corpora/tinystories-calib.txt")),
                                 *lm.tokenizer, {128, 300}, "calib");
  const std::vector<int> tokens = calib[0].tokens;
  for (const int w_bits : {16, 4}) {  // 16: rotated float linears read the layer's own storage
    INFO("w_bits " << w_bits);
    QuantConfig base;
    base.w_bits = w_bits;
    const Recipe recipe = MakeRecipe("rotate", base);
    const RecipeResult rr = ApplyRecipe(lm.model, recipe, calib);
    RecipePipeline pipe(lm.model, recipe, calib, false);
    pipe.KeepQuantizedLayers();
    pipe.BuildAll();
    const Mat got = Forward(pipe.quantized(), tokens), want = Forward(rr.quantized, tokens);
    CHECK((got.array() == want.array()).all());
  }
}
