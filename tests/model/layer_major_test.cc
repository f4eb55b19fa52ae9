// Layer-major execution is a loop-order change only: every window's logits and every observed
// site must equal the window-major Forward's bit for bit, for float and quantized models (every
// recipe, online rotations, sink-aware wrappers, KV quantization) on real checkpoints.
#include <catch2/catch.hpp>

#include <map>

#include "calib/dataset.h"
#include "calib/eval.h"
#include "calib/quant_error.h"
#include "model/layer_major.h"
#include "model/loader.h"
#include "quant/integer_linear.h"
#include "quant/recipe.h"
#include "tests/test_paths.h"

using namespace sq;

namespace {

std::vector<Window> TextWindows(const LoadedModel& lm, const std::string& corpus, int ctx,
                                long tokens) {
  return MakeWindows(ReadTextFile(test::RequireShared(corpus)), *lm.tokenizer, {ctx, tokens},
                     corpus);
}

// Every window's layer-major logits against Forward's, stream by stream.
void RequireSameLogits(const std::vector<const Model*>& models, const std::vector<Window>& ws) {
  std::vector<LayerMajorStream> streams;
  for (const Model* m : models) streams.push_back({m});
  int seen = 0;
  ForwardLayerMajor(streams, TokenSpans(ws), [&](int w, std::span<const Mat> logits) {
    REQUIRE(w == seen++);
    for (size_t s = 0; s < models.size(); ++s) {
      const Mat ref = Forward(*models[s], ws[w].tokens);
      REQUIRE(logits[s].rows() == ref.rows());
      REQUIRE((logits[s].array() == ref.array()).all());
    }
  });
  REQUIRE(seen == static_cast<int>(ws.size()));
}

// Records every observed site in arrival order per window, to compare both loop orders.
class Recorder : public ForwardObserver {
 public:
  void OnWindow(int window, std::span<const int>) override { window_ = window; }
  void Observe(const Where& at, const Mat& x) override {
    if (at.site == Site::kLogits) return;
    seen_[window_].push_back(x);
  }
  void SetWindow(int w) { window_ = w; }
  std::map<int, std::vector<Mat>> seen_;

 private:
  int window_ = 0;
};

}  // namespace

TEST_CASE("layer-major logits equal Forward for every recipe on stories260K", "[model][layer-major]") {
  LoadedModel lm = LoadModel(test::RequireShared("models/stories260K/stories260K.bin"), "");
  const auto calib = TextWindows(lm, "corpora/tinystories-calib.txt", 128, 256);
  const auto eval = TextWindows(lm, "corpora/tinystories-valid.txt", 96, 300);
  REQUIRE(eval.size() >= 3);
  QuantConfig base;
  base.a_bits = 4;
  base.kv_bits = 4;
  for (const char* method : {"rtn", "gptq", "smooth", "rotate", "rotate-gptq", "smooth-rotate",
                             "rotate+sink-aware", "rotate+kv-rotate"}) {
    INFO(method);
    const RecipeResult rr = ApplyRecipe(lm.model, MakeRecipe(method, base), calib);
    Model integer = rr.quantized;
    UseIntegerKernels(integer);
    RequireSameLogits({&lm.model, &rr.transformed, &rr.quantized, &integer}, eval);
  }
}

TEST_CASE("layer-major logits equal Forward on the gated bytelm models", "[model][layer-major]") {
  for (const char* dir : {"models/bytelm-austen", "models/bytelm-austen-gatednorm"}) {
    INFO(dir);
    LoadedModel lm = LoadModel(test::RequireShared(dir), "");
    const auto eval = TextWindows(lm, "corpora/austen-emma-valid.txt", 64, 150);
    QuantConfig base;
    base.a_bits = 4;
    const RecipeResult rr = ApplyRecipe(lm.model, MakeRecipe("rotate", base), {});
    RequireSameLogits({&lm.model, &rr.quantized}, eval);
  }
}

TEST_CASE("layer-major observers see what window-major observers see", "[model][layer-major]") {
  LoadedModel lm = LoadModel(test::RequireShared("models/bytelm-austen-gatednorm"), "");
  const auto eval = TextWindows(lm, "corpora/austen-emma-valid.txt", 40, 100);
  Recorder window_major, layer_major;
  for (size_t w = 0; w < eval.size(); ++w) {
    window_major.SetWindow(static_cast<int>(w));
    Forward(lm.model, eval[w].tokens, &window_major);
  }
  const LayerMajorStream s{&lm.model, &layer_major};
  ForwardLayerMajor({&s, 1}, TokenSpans(eval), {});
  REQUIRE(window_major.seen_.size() == eval.size());
  for (const auto& [w, mats] : window_major.seen_) {
    const std::vector<Mat>& lm_mats = layer_major.seen_[w];
    REQUIRE(lm_mats.size() == mats.size());
    for (size_t i = 0; i < mats.size(); ++i) REQUIRE((lm_mats[i].array() == mats[i].array()).all());
  }
}

TEST_CASE("EvaluatePerplexity: layer-major NLL equals per-window scoring", "[model][layer-major]") {
  LoadedModel lm = LoadModel(test::RequireShared("models/bytelm-austen"), "");
  const auto eval = TextWindows(lm, "corpora/austen-emma-valid.txt", 64, 200);
  NllSums ref;
  for (const Window& w : eval) {
    const Mat logits = Forward(lm.model, w.tokens);
    for (int t = w.first_target; t < static_cast<int>(w.tokens.size()); ++t) {
      ref.Add(TokenNll(logits.row(t - 1).data(), static_cast<int>(logits.cols()), w.tokens[t]));
    }
  }
  const PplResult r = EvaluatePerplexity(lm.model, eval);
  CHECK(r.nll == ref.Result(1, 1).nll);
  CHECK(r.ppl_stderr == ref.Result(1, 1).ppl_stderr);
}
