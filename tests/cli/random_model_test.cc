// `sinkquant random-model` through the real binary: sharded output that the normal loader
// reads back, trained-scale values, and the output folder's all-or-nothing rules.
#include <sys/resource.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "calib/eval.h"
#include "formats/checkpoint.h"
#include "formats/hf_names.h"
#include "formats/safetensors.h"
#include "model/model.h"
#include "tests/cli/cli_helpers.h"
#include "tests/model/arch_cases.h"

using namespace sq;
using namespace sq::test;
namespace fs = std::filesystem;

namespace {

// 2 layers, vocab 256; embed_tokens alone (64 KB in F32) is bigger than a 20 KB shard.
std::string TinyConfig(const std::string& dir) {
  return WriteTemp(dir, "config.json", R"({
    "architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "vocab_size": 256, "max_position_embeddings": 128, "initializer_range": 0.04,
    "tie_word_embeddings": false})");
}

RunResult RandomModel(const std::string& config, const std::string& out,
                      const std::string& extra = "") {
  return RunSinkquant("random-model --config " + config + " --dtype f32 --seed 5 --out " + out +
                      " " + extra);
}

}  // namespace

TEST_CASE("random-model shards like HF and the loader reads back the unsharded values",
          "[cli][random-model]") {
  const std::string dir = TempDir("random_shards");
  const std::string config = TinyConfig(dir);
  const RunResult whole = RandomModel(config, dir + "/whole");
  INFO(whole.output);
  REQUIRE(whole.exit_code == 0);
  CHECK(fs::exists(dir + "/whole/model.safetensors"));
  const RunResult sharded = RandomModel(config, dir + "/sharded", "--max-shard-size 20KB");
  INFO(sharded.output);
  REQUIRE(sharded.exit_code == 0);
  CHECK_FALSE(fs::exists(dir + "/sharded/model.safetensors"));
  std::ifstream index_file(dir + "/sharded/model.safetensors.index.json");
  const auto index = nlohmann::json::parse(index_file);
  const std::string first = index["weight_map"]["model.embed_tokens.weight"];
  CHECK_THAT(first, Catch::Matches("model-00001-of-000[0-9][0-9].safetensors"));

  const Checkpoint a = LoadCheckpoint(dir + "/whole");
  Checkpoint b = LoadCheckpoint(dir + "/sharded");
  CHECK(a.config.initializer_range == 0.04f);  // written back to config.json
  uint64_t total = 0;
  ForEachTensor(b.config, b.weights, [&](TensorId, const TensorView& v) { total += v.nbytes(); });
  CHECK(index["metadata"]["total_size"].get<uint64_t>() == total);
  ForEachTensor(a.config, a.weights, [&](TensorId id, const TensorView& va) {
    INFO(HfTensorName(id));
    const TensorView& vb = WeightSlot(b.weights, id);
    REQUIRE(va.shape == vb.shape);
    CHECK(std::memcmp(va.data, vb.data, va.nbytes()) == 0);
  });
}

TEST_CASE("random-model has a trained model's scale: std = initializer_range, NLL ~ log V",
          "[cli][random-model]") {
  const std::string dir = TempDir("random_scale");
  const RunResult r = RandomModel(TinyConfig(dir), dir + "/m");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const Checkpoint ck = LoadCheckpoint(dir + "/m");
  const Vec wq = ToMat(ck.weights.layers[1].wq).reshaped<Eigen::RowMajor>();
  const double mean = wq.mean();
  const double std = std::sqrt((wq.array() - mean).square().mean());
  CHECK(std::abs(mean) < 0.004);
  CHECK(std == Approx(0.04).epsilon(0.05));  // 4096 samples: std error of std ~1.1%
  CHECK(ToVec(ck.weights.layers[0].attn_norm).isOnes());

  const Model m = BuildDenseModel(ck.config, ck.weights);
  std::mt19937 rng(1);
  std::vector<int> ids(64);
  for (int& id : ids) id = static_cast<int>(rng() % 256);
  const Mat logits = Forward(m, ids);
  double nll = 0;
  for (size_t t = 0; t + 1 < ids.size(); ++t) {
    nll -= LogSoftmax(logits.row(t).data(), 256)[ids[t + 1]];
  }
  nll /= static_cast<double>(ids.size() - 1);
  CHECK(nll == Approx(std::log(256.0)).margin(0.5));
  CHECK(logits.cwiseAbs().maxCoeff() < 5);
}

TEST_CASE("random-model --config takes a model folder as --model does", "[cli][random-model]") {
  const std::string dir = TempDir("random_folder");
  REQUIRE(RandomModel(TinyConfig(dir), dir + "/by_file").exit_code == 0);
  const RunResult by_folder = RandomModel(dir, dir + "/by_folder");
  INFO(by_folder.output);
  REQUIRE(by_folder.exit_code == 0);
  CHECK(ReadBytes(dir + "/by_folder/model.safetensors") ==
        ReadBytes(dir + "/by_file/model.safetensors"));
  const RunResult empty = RandomModel(TempDir("random_folder_empty"), dir + "/none");
  CHECK(empty.exit_code != 0);
  CHECK_THAT(empty.output, Catch::Contains("--config is a folder without a config.json"));
  CHECK_FALSE(fs::exists(dir + "/none"));
}

TEST_CASE("random-model refuses an existing --out and never deletes an input with --force",
          "[cli][random-model]") {
  const std::string dir = TempDir("random_refuse");
  const std::string config = TinyConfig(dir);
  REQUIRE(RandomModel(config, dir + "/m").exit_code == 0);
  const RunResult again = RandomModel(config, dir + "/m");
  CHECK(again.exit_code != 0);
  CHECK_THAT(again.output, Catch::Contains("already exists (pass --force"));
  const RunResult forced = RandomModel(config, dir + "/m", "--force");
  INFO(forced.output);
  CHECK(forced.exit_code == 0);
  for (const auto& e : fs::directory_iterator(dir)) {  // no temp or set-aside folder is left
    CHECK(e.path().filename().string().find(".tmp.") == std::string::npos);
  }
  // The folder holding --config looks like a model folder, but --force must not replace it.
  const RunResult onto_input = RandomModel(config, dir, "--force");
  CHECK(onto_input.exit_code != 0);
  CHECK_THAT(onto_input.output, Catch::Contains("would delete the input"));
  CHECK(fs::exists(config));
  const RunResult bad_size = RandomModel(config, dir + "/n", "--max-shard-size 5XB");
  CHECK(bad_size.exit_code != 0);
  CHECK_THAT(bad_size.output, Catch::Contains("--max-shard-size must be a positive size"));
}

TEST_CASE("a failed or killed random-model write leaves nothing at --out", "[cli][random-model]") {
  const std::string dir = TempDir("random_fail");
  const std::string config = TinyConfig(dir);
  const std::string file = WriteTemp(dir, "not-a-folder", "x");
  const RunResult r = RandomModel(config, file + "/m");
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.output, Catch::Contains("cannot create folder"));
  // A 40 KB file-size limit kills the process (SIGXFSZ) in the middle of a tensor.
  const std::string killed = dir + "/killed";
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const rlimit limit{40 << 10, 40 << 10};
    setrlimit(RLIMIT_FSIZE, &limit);
    freopen("/dev/null", "w", stdout);
    execl(Binary().c_str(), "sinkquant", "random-model", "--config", config.c_str(), "--dtype",
          "f32", "--out", killed.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGXFSZ);
  CHECK_FALSE(fs::exists(killed));
}

// Runs random-model on the config.json of case `a`; returns the folder holding its "out".
static std::string RandomModelOfCase(const test::ArchCase& a) {
  const std::string dir = TempDir("random_" + a.name);
  fs::create_directories(dir + "/cfg");
  WriteTemp(dir + "/cfg", "config.json", a.config.dump());
  const RunResult r = RandomModel(dir + "/cfg", dir + "/out");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  return dir;
}

TEST_CASE("random-model writes Phi-3 fused tensors and SmolLM3 NoPE configs from a config dir",
          "[cli][random-model][arch]") {
  for (const test::ArchCase& a : test::ArchCases()) {
    if (a.name != "phi3_partial_window" && a.name != "smollm3_interval_window") continue;
    INFO(a.name);
    const std::string dir = RandomModelOfCase(a);
    const SafetensorsFile st = OpenSafetensors(dir + "/out/model.safetensors");
    CHECK(st.tensors.count("model.layers.2.self_attn.qkv_proj.weight") == (a.fused ? 1u : 0u));
    CHECK(st.tensors.count("model.layers.2.self_attn.q_proj.weight") == (a.fused ? 0u : 1u));
    const Checkpoint ck = LoadCheckpoint(dir + "/out");
    CHECK(ck.config.rope_dim() == a.rotary_dim);
    for (int l = 0; l < ck.config.n_layers; ++l) {
      CHECK(ck.config.window(l) == a.window[l]);
      CHECK(ck.config.rope(l) == a.rope[l]);
    }
    const Mat logits = Forward(BuildDenseModel(ck.config, ck.weights), std::vector<int>{1, 2, 3});
    CHECK(logits.allFinite());
    CHECK(logits.cwiseAbs().maxCoeff() > 0);
  }
}

TEST_CASE("random-model writes Gemma 2 and Gemma 3 checkpoints from a config dir",
          "[cli][random-model][arch]") {
  for (const test::ArchCase& a : test::ArchCases()) {
    if (a.gemma == 0) continue;
    INFO(a.name);
    const std::string dir = RandomModelOfCase(a);
    // Gemma's names, norms stored as w = 0 (a scale of 1 + 0), read back as the scale 1.
    const SafetensorsFile st = OpenSafetensors(dir + "/out/model.safetensors");
    for (const char* n : {"post_attention_layernorm", "pre_feedforward_layernorm",
                          "post_feedforward_layernorm", "input_layernorm"}) {
      const std::string name = std::string("model.layers.1.") + n + ".weight";
      REQUIRE(st.tensors.count(name) == 1);
      CHECK(ToVec(st.tensors.at(name)).isZero());
    }
    CHECK(st.tensors.count("model.layers.1.self_attn.q_norm.weight") == (a.qk_norm ? 1u : 0u));
    const Checkpoint ck = LoadCheckpoint(dir + "/out");
    CHECK(ck.config.post_norms);
    CHECK(ToVec(ck.weights.layers[1].attn_post_norm).isOnes());
    CHECK(ToVec(ck.weights.layers[1].ffn_norm).isOnes());
    for (int l = 0; l < ck.config.n_layers; ++l) CHECK(ck.config.window(l) == a.window[l]);
    const Mat logits = Forward(BuildDenseModel(ck.config, ck.weights), std::vector<int>{1, 2, 3});
    CHECK(logits.allFinite());
    CHECK(logits.cwiseAbs().maxCoeff() > 0);
  }
}
