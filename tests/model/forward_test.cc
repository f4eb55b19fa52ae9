// The forward pass against logits dumped by an independent implementation (the PyTorch model
// the bytelm-austen checkpoints were trained with; llm.c's test_gpt2 style).
#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "calib/eval.h"
#include "formats/checkpoint.h"
#include "model/model.h"
#include "model/random_weights.h"
#include "tests/test_paths.h"
#include "tests/test_util.h"

using namespace sq;

namespace {

// PyTorch's float32 forward and ours sum in different orders; logits of magnitude ~10 agree
// to ~2e-5 here (measured); test::kLogitTolerance leaves room for other CPUs.
using test::kLogitTolerance;

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

void CheckAgainstReference(const std::string& dir) {
  const std::string path = sq::test::RequireShared("models/" + dir);
  Checkpoint ck = LoadCheckpoint(path);
  Model m = BuildDenseModel(ck.config, ck.weights);
  const auto ref = ReadJson(path + "/reference.json");
  for (const auto& p : ref["prompts"]) {
    const std::vector<int> ids = p["input_ids"].get<std::vector<int>>();
    const std::vector<float> want = p["last_logits_all"].get<std::vector<float>>();
    const Mat logits = Forward(m, ids);
    REQUIRE(logits.cols() == static_cast<Eigen::Index>(want.size()));
    double max_diff = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      max_diff = std::max(max_diff, std::abs(double(logits(logits.rows() - 1, i)) - want[i]));
    }
    INFO(dir << " prompt '" << p["text"].get<std::string>().substr(0, 20) << "' max |diff| "
              << max_diff);
    CHECK(max_diff < kLogitTolerance);
  }
  // The 256-token window's mean loss (255 predictions).
  Window w{ref["window"]["input_ids"].get<std::vector<int>>(), 1};
  const PplResult r = EvaluatePerplexity(m, {w});
  CHECK(r.tokens == ref["window"]["num_predictions"].get<long>());
  CHECK(r.nll == Approx(ref["window"]["mean_loss"].get<double>()).epsilon(1e-5));
}

}  // namespace

TEST_CASE("plain Llama forward matches the PyTorch reference logits", "[model][real]") {
  CheckAgainstReference("bytelm-austen");
}

TEST_CASE("gated-attention forward matches the PyTorch reference logits", "[model][real]") {
  CheckAgainstReference("bytelm-austen-gated");
}

TEST_CASE("GatedNorm + gated-attention forward matches the PyTorch reference", "[model][real]") {
  CheckAgainstReference("bytelm-austen-gatednorm");
}

TEST_CASE("Forward refuses a random model too long a sequence or an unknown token id", "[model]") {
  const ModelConfig c =
      test::SmallConfig({.hidden = 16, .intermediate = 32, .n_layers = 1, .n_heads = 2,
                         .n_kv_heads = 1, .head_dim = 8, .vocab = 10, .max_position = 4});
  Model m = BuildDenseModel(c, RandomWeights(c, 1));
  std::vector<int> ids = {1, 2, 3, 4, 5};
  CHECK_THROWS_WITH(Forward(m, ids), Catch::Contains("max_position_embeddings"));
  std::vector<int> bad = {1, 99};
  CHECK_THROWS_WITH(Forward(m, bad), Catch::Contains("outside the embedding table"));
}

TEST_CASE("GQA with one KV head equals MHA with the KV head repeated", "[model]") {
  const ModelConfig c =
      test::SmallConfig({.hidden = 32, .intermediate = 48, .n_layers = 2, .n_heads = 4,
                         .n_kv_heads = 1, .head_dim = 8, .vocab = 20, .max_position = 16});
  ModelWeights w = RandomWeights(c, 7);
  Model gqa = BuildDenseModel(c, w);
  // Build the MHA twin: repeat k/v rows for every head.
  ModelConfig c2 = c;
  c2.n_kv_heads = 4;
  ModelWeights w2 = w;
  for (auto& L : w2.layers) {
    Mat k = ToMat(L.wk), v = ToMat(L.wv);
    L.wk = w2.Own(k.replicate(4, 1), {32, 32});
    L.wv = w2.Own(v.replicate(4, 1), {32, 32});
  }
  Model mha = BuildDenseModel(c2, w2);
  std::vector<int> ids = {3, 1, 4, 1, 5, 9, 2, 6};
  const Mat a = Forward(gqa, ids), b = Forward(mha, ids);
  CHECK((a - b).cwiseAbs().maxCoeff() < 1e-4f);
}
