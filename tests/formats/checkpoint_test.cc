#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/numeric.h"
#include "formats/checkpoint.h"
#include "formats/hf_config.h"
#include "formats/hf_names.h"
#include "formats/llama2c.h"
#include "formats/safetensors.h"
#include "tests/config_checks.h"
#include "tests/test_paths.h"

using namespace sq;
namespace fs = std::filesystem;

namespace {

// Every tensor of `a` equals the same tensor of `b` in value (dtypes may differ).
void RequireSameWeights(const ModelConfig& c, const ModelWeights& a, const ModelWeights& b) {
  int n = 0;
  ForEachTensor(c, a, [&](TensorId id, const TensorView& v) {
    TensorView w;
    ForEachTensor(c, b, [&](TensorId id2, const TensorView& v2) {
      if (id2.layer == id.layer && id2.role == id.role) w = v2;
    }, false);
    INFO(HfTensorName(id));
    REQUIRE(!w.empty());
    REQUIRE(w.shape == v.shape);
    CHECK(ToVec(w) == ToVec(v));
    ++n;
  }, false);
  CHECK(n > 0);
}

}  // namespace

TEST_CASE("LoadCheckpoint reads the three real bytelm-austen models", "[formats]") {
  struct Case {
    const char* dir;
    bool gate;
    int rank;
    float embed0, lm_head0, down5_last;
  };
  for (const Case& k : {Case{"bytelm-austen", false, 0, 0.0018114846898242831f,
                             -0.02185429073870182f, 0.06769542396068573f},
                        Case{"bytelm-austen-gated", true, 0, 0.012602955102920532f,
                             0.005068711005151272f, -0.05660966783761978f},
                        Case{"bytelm-austen-gatednorm", true, 16, -0.004363215994089842f,
                             0.12822389602661133f, -0.014502427540719509f}}) {
    INFO(k.dir);
    const std::string dir = test::RequireShared(std::string("models/") + k.dir);
    Checkpoint ck = LoadCheckpoint(dir);
    const ModelConfig& c = ck.config;
    CHECK(c.architecture == "LlamaForCausalLM");
    CHECK(c.hidden == 192);
    CHECK(c.intermediate == 512);
    CHECK(c.n_layers == 6);
    CHECK(c.n_heads == 6);
    CHECK(c.n_kv_heads == 6);
    CHECK(c.head_dim == 32);
    CHECK(c.vocab == 264);
    CHECK(c.max_position == 256);
    CHECK(c.norm_eps == 1e-5f);
    CHECK(c.rope_pairing == RopePairing::kHalf);
    CHECK_FALSE(c.tie_embeddings);
    CHECK(c.bos_id == 256);
    CHECK(c.eos_id == 257);
    CHECK(c.attn_output_gate == k.gate);
    CHECK(c.gated_norm_rank == k.rank);
    CHECK(ck.tokenizer_path == dir + "/tokenizer.json");
    const ModelWeights& w = ck.weights;
    REQUIRE(w.layers.size() == 6);
    CHECK(w.layers[0].wq.shape == std::vector<int64_t>{k.gate ? 384 : 192, 192});
    CHECK(ToVec(w.embed)[0] == k.embed0);
    CHECK(ToVec(w.lm_head)[0] == k.lm_head0);
    CHECK(ToVec(w.layers[5].w_down)[192 * 512 - 1] == k.down5_last);
    CHECK(w.layers[3].bq.empty());
    CHECK(w.layers[3].attn_norm_gate.present() == (k.rank > 0));
    CHECK(w.final_norm_gate.present() == (k.rank > 0));
    if (k.rank > 0) {
      CHECK(w.layers[2].ffn_norm_gate.down.shape == std::vector<int64_t>{16, 192});
      CHECK(w.final_norm_gate.up.shape == std::vector<int64_t>{192, 16});
    }
  }
}

TEST_CASE("LoadCheckpoint reads llama2.c stories260K with views into the file", "[formats]") {
  const std::string bin = test::RequireShared("models/stories260K/stories260K.bin");
  Checkpoint ck = LoadCheckpoint(bin);
  const ModelConfig& c = ck.config;
  CHECK(c.hidden == 64);
  CHECK(c.intermediate == 172);
  CHECK(c.n_layers == 5);
  CHECK(c.n_heads == 8);
  CHECK(c.n_kv_heads == 4);
  CHECK(c.head_dim == 8);
  CHECK(c.vocab == 512);
  CHECK(c.max_position == 512);
  CHECK(c.rope_pairing == RopePairing::kAdjacent);
  CHECK(c.tie_embeddings);
  CHECK(c.bos_id == 1);
  CHECK(c.eos_id == 2);
  CHECK(ck.tokenizer_path == test::SharedPath("models/stories260K/tok512.bin"));
  const ModelWeights& w = ck.weights;
  CHECK(w.lm_head.data == w.embed.data);  // shared classifier
  CHECK(ToVec(w.embed)[0] == -0.29474878311157227f);
  CHECK(ToVec(w.layers[0].attn_norm)[0] == 0.9722429513931274f);
  CHECK(w.layers[2].wk.shape == std::vector<int64_t>{32, 64});
  CHECK(ToVec(w.layers[2].wk)[0] == 0.05322672799229622f);
  CHECK(ToVec(w.layers[4].w_up)[172 * 64 - 1] == 0.10603193938732147f);
  CHECK(ToVec(w.final_norm)[0] == 2.4583089351654053f);
}

TEST_CASE("HF configs: Llama 3.2, Qwen2.5, Qwen3 and Mistral parse; GPT-2 is refused",
          "[formats]") {
  ModelConfig l = ParseHfConfig(test::RequireShared("configs/llama-3.2-1b/config.json"));
  CHECK(l.hidden == 2048);
  CHECK(l.n_kv_heads == 8);
  CHECK(l.head_dim == 64);
  CHECK(l.tie_embeddings);
  CHECK(l.rope_theta == 500000.0f);
  CHECK(l.rope_scaling.enabled);
  CHECK(l.rope_scaling.factor == 32.0f);
  CHECK(l.rope_scaling.high_freq_factor == 4.0f);
  CHECK(l.rope_scaling.original_max_position == 8192);
  CHECK_FALSE(l.qkv_bias);
  CHECK(l.eos_id == 128001);

  ModelConfig q2 = ParseHfConfig(test::RequireShared("configs/qwen2.5-0.5b-instruct/config.json"));
  CHECK(q2.architecture == "Qwen2ForCausalLM");
  CHECK(q2.qkv_bias);
  CHECK_FALSE(q2.qk_norm);
  CHECK(q2.head_dim == 64);
  CHECK(q2.norm_eps == 1e-6f);
  CHECK(q2.rope_theta == 1e6f);
  CHECK_FALSE(q2.rope_scaling.enabled);

  ModelConfig q3 = ParseHfConfig(test::RequireShared("configs/qwen3-0.6b/config.transcribed.json"));
  CHECK(q3.qk_norm);
  CHECK_FALSE(q3.qkv_bias);
  CHECK(q3.head_dim == 128);  // explicit, not hidden / heads = 64
  CHECK(q3.q_dim() == 2048);

  const std::string gpt2 = test::RequireShared("configs/gpt2/config.json");
  CHECK_THROWS_WITH(ParseHfConfig(gpt2),
                    Catch::Contains(gpt2) && Catch::Contains("unsupported architecture "
                                                             "'GPT2LMHeadModel'") &&
                        Catch::Contains("LlamaForCausalLM"));
  // Mistral-7B-v0.1's window binds past 4096 tokens, in every layer.
  const ModelConfig mi = ParseHfConfig(test::RequireShared("configs/mistral-7b-v0.1/config.json"));
  REQUIRE(mi.layer_window.size() == 32);
  CHECK(mi.window(0) == 4096);
  CHECK(mi.window(31) == 4096);
}

TEST_CASE("WriteHfConfig round-trips through ParseHfConfig", "[formats]") {
  const std::string dir = test::TempDir("hf_config_rt");
  for (const char* rel : {"configs/llama-3.2-1b/config.json",
                          "configs/qwen2.5-0.5b-instruct/config.json",
                          "configs/qwen3-0.6b/config.transcribed.json",
                          "models/bytelm-austen-gatednorm/config.json"}) {
    INFO(rel);
    ModelConfig a = ParseHfConfig(test::RequireShared(rel));
    WriteHfConfig(dir + "/config.json", a);
    ModelConfig b = ParseHfConfig(dir + "/config.json");
    test::CheckSameConfig(b, a);
  }
  ModelConfig adj = ParseHfConfig(test::RequireShared("models/bytelm-austen/config.json"));
  adj.rope_pairing = RopePairing::kAdjacent;
  CHECK_THROWS_WITH(WriteHfConfig(dir + "/adj.json", adj), Catch::Contains("adjacent"));
  CHECK_FALSE(fs::exists(dir + "/adj.json"));
}

TEST_CASE("WriteHfCheckpoint then LoadCheckpoint gives the same tensors", "[formats]") {
  Checkpoint a = LoadCheckpoint(test::RequireShared("models/bytelm-austen-gatednorm"));
  const std::string dir = test::TempDir("hf_ckpt_rt") + "/out/nested";  // created on demand
  WriteHfCheckpoint(dir, a.config, a.weights);
  Checkpoint b = LoadCheckpoint(dir);
  CHECK(b.config.gated_norm_rank == 16);
  CHECK(b.tokenizer_path.empty());
  RequireSameWeights(a.config, a.weights, b.weights);
}

TEST_CASE("A tied llama2.c model converted to HF stores lm_head once and reloads tied",
          "[formats]") {
  Checkpoint bin = LoadCheckpoint(test::RequireShared("models/stories260K/stories260K.bin"));
  ModelConfig c;
  ModelWeights w;
  Llama2cToHf(bin.config, bin.weights, &c, &w);
  const std::string dir = test::TempDir("hf_tied");
  WriteHfCheckpoint(dir, c, w);
  SafetensorsFile st = OpenSafetensors(dir + "/model.safetensors");
  CHECK(st.tensors.count("lm_head.weight") == 0);
  CHECK(st.tensors.count("model.embed_tokens.weight") == 1);
  Checkpoint hf = LoadCheckpoint(dir);
  CHECK(hf.config.tie_embeddings);
  CHECK(hf.config.rope_pairing == RopePairing::kHalf);
  CHECK(hf.weights.lm_head.data == hf.weights.embed.data);
  RequireSameWeights(c, w, hf.weights);
}

TEST_CASE("A sharded checkpoint (two files + index.json) loads like the single file",
          "[formats]") {
  Checkpoint a = LoadCheckpoint(test::RequireShared("models/bytelm-austen"));
  const std::string dir = test::TempDir("hf_sharded");
  // Shard 1: embeddings and layers 0-2; shard 2: the rest. Shard 2 is stored in F16 to show
  // tensors keep their stored dtype.
  std::vector<std::pair<std::string, TensorView>> s1, s2;
  std::vector<std::shared_ptr<OwnedTensor>> keep;
  std::vector<std::vector<uint16_t>> halves;
  nlohmann::json weight_map;
  ForEachTensor(a.config, a.weights, [&](TensorId id, const TensorView& v) {
    const std::string name = HfTensorName(id);
    if (id.layer >= 0 && id.layer <= 2) {
      s1.emplace_back(name, v);
      weight_map[name] = "model-00001-of-00002.safetensors";
      return;
    }
    Vec f = ToVec(v);
    halves.emplace_back(f.size());
    for (int i = 0; i < f.size(); ++i) halves.back()[i] = FloatToF16(f[i]);
    TensorView h = v;
    h.dtype = DType::kF16;
    h.data = reinterpret_cast<const std::byte*>(halves.back().data());
    s2.emplace_back(name, h);
    weight_map[name] = "model-00002-of-00002.safetensors";
  });
  WriteSafetensors(dir + "/model-00001-of-00002.safetensors", s1);
  WriteSafetensors(dir + "/model-00002-of-00002.safetensors", s2);
  std::ofstream(dir + "/model.safetensors.index.json")
      << nlohmann::json{{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}}.dump();
  fs::copy_file(test::RequireShared("models/bytelm-austen/config.json"), dir + "/config.json");

  Checkpoint b = LoadCheckpoint(dir);
  CHECK(b.weights.storage.size() == 2);
  CHECK(b.weights.layers[1].wq.dtype == DType::kF32);
  CHECK(b.weights.layers[4].wq.dtype == DType::kF16);
  CHECK(b.weights.embed.dtype == DType::kF16);
  // Every tensor equals what was written: shard 1 the original F32, shard 2 its F16 rounding.
  ModelWeights expected;
  expected.layers.resize(a.config.n_layers);
  for (const auto* shard : {&s1, &s2}) {
    for (const auto& [name, v] : *shard) WeightSlot(expected, *ParseHfTensorName(name)) = v;
  }
  RequireSameWeights(a.config, expected, b.weights);
  CHECK(ToVec(b.weights.layers[0].w_up) == ToVec(a.weights.layers[0].w_up));
  const float x = ToVec(a.weights.layers[5].w_down)[7];
  CHECK(ToVec(b.weights.layers[5].w_down)[7] == F16ToFloat(FloatToF16(x)));
  CHECK(ToVec(b.weights.layers[5].w_down)[7] != x);  // F16 rounding happened (a real change)

  // Writing an F16 checkpoint as HF converts it to F32 with the same values.
  const std::string out = test::TempDir("hf_sharded_out");
  WriteHfCheckpoint(out, b.config, b.weights);
  Checkpoint c = LoadCheckpoint(out);
  CHECK(c.weights.layers[4].wq.dtype == DType::kF32);
  RequireSameWeights(b.config, b.weights, c.weights);
}

TEST_CASE("RoPE row permutation: adjacent pairs -> rotate_half order, and back", "[formats]") {
  // One head of width 6: new rows are old rows [0, 2, 4, 1, 3, 5]; two heads permute separately.
  Mat w(12, 2);
  for (int r = 0; r < 12; ++r) w.row(r) << r, 100 + r;
  Mat p = PermuteAdjacentToHalf(w, 2);
  const int want[12] = {0, 2, 4, 1, 3, 5, 6, 8, 10, 7, 9, 11};
  for (int r = 0; r < 12; ++r) {
    CHECK(p(r, 0) == want[r]);
    CHECK(p(r, 1) == 100 + want[r]);
  }
  CHECK(PermuteHalfToAdjacent(p, 2) == w);
  CHECK_THROWS_WITH(PermuteAdjacentToHalf(Mat::Zero(10, 2), 2), Catch::Contains("even width"));

  // The converted stories260K q/k rows permute back to the original rows of the .bin file.
  Checkpoint bin = LoadCheckpoint(test::RequireShared("models/stories260K/stories260K.bin"));
  ModelConfig c;
  ModelWeights hf;
  Llama2cToHf(bin.config, bin.weights, &c, &hf);
  for (int l = 0; l < c.n_layers; ++l) {
    CHECK(ToMat(hf.layers[l].wq) != ToMat(bin.weights.layers[l].wq));
    CHECK(PermuteHalfToAdjacent(ToMat(hf.layers[l].wq), c.n_heads) ==
          ToMat(bin.weights.layers[l].wq));
    CHECK(PermuteHalfToAdjacent(ToMat(hf.layers[l].wk), c.n_kv_heads) ==
          ToMat(bin.weights.layers[l].wk));
    CHECK(hf.layers[l].wv.data == bin.weights.layers[l].wv.data);  // others are shared views
  }
}
