// Broken inputs, each built in a temp dir: every one must throw an Error whose message names
// the file and the problem.
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include "core/error.h"
#include "formats/checkpoint.h"
#include "formats/hf_config.h"
#include "formats/hf_names.h"
#include "formats/safetensors.h"
#include "tests/test_paths.h"
#include "tests/test_util.h"

using namespace sq;
namespace fs = std::filesystem;
using Catch::Contains;

namespace {

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), bytes.size());
}

// A safetensors file with a hand-written header and `data_bytes` zero bytes after it.
std::string RawSafetensors(const std::string& dir, const std::string& header, size_t data_bytes,
                           uint64_t claimed_len = 0) {
  const std::string path = dir + "/bad.safetensors";
  const uint64_t len = claimed_len ? claimed_len : header.size();
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(len >> (8 * i));
  WriteBytes(path, bytes + header + std::string(data_bytes, '\0'));
  return path;
}

// A tiny Llama (d 8, f 16, 2 layers, 2 heads of 4, vocab 10) written as an HF folder.
std::string TinyHfDir(const std::string& name) {
  const ModelConfig c = test::SmallConfig(
      {.hidden = 8, .intermediate = 16, .n_heads = 2, .head_dim = 4, .vocab = 10,
       .max_position = 32});
  ModelWeights w;
  w.layers.resize(c.n_layers);
  auto fill = [&](TensorView& slot, std::vector<int64_t> shape) {
    const int64_t rows = shape.size() == 1 ? 1 : shape[0];
    slot = w.Own(Mat::Random(rows, shape.back()), shape);
  };
  fill(w.embed, {10, 8});
  fill(w.lm_head, {10, 8});
  fill(w.final_norm, {8});
  for (auto& L : w.layers) {
    fill(L.attn_norm, {8});
    fill(L.ffn_norm, {8});
    for (TensorView* v : {&L.wq, &L.wk, &L.wv, &L.wo}) fill(*v, {8, 8});
    fill(L.w_gate, {16, 8});
    fill(L.w_up, {16, 8});
    fill(L.w_down, {8, 16});
  }
  const std::string dir = test::TempDir(name);
  WriteHfCheckpoint(dir, c, w);
  return dir;
}

// Rewrites `dir`/model.safetensors after `edit` changed its tensor list.
void RewriteTensors(const std::string& dir,
                    const std::function<void(std::map<std::string, TensorView>&)>& edit) {
  SafetensorsFile f = OpenSafetensors(dir + "/model.safetensors");
  edit(f.tensors);
  std::vector<std::pair<std::string, TensorView>> list(f.tensors.begin(), f.tensors.end());
  WriteSafetensors(dir + "/model.safetensors", list);  // f.file keeps the old bytes mapped
}

void EditConfig(const std::string& dir, const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json j = ReadJsonFile(dir + "/config.json");
  edit(j);
  std::ofstream(dir + "/config.json") << j.dump();
}

}  // namespace

TEST_CASE("the tiny HF folder the bad-input tests start from is valid", "[formats]") {
  const std::string dir = TinyHfDir("bad_base");
  Checkpoint ck = LoadCheckpoint(dir);
  CHECK(ck.config.hidden == 8);
  CHECK(ck.weights.layers[1].w_down.shape == std::vector<int64_t>{8, 16});
}

TEST_CASE("safetensors: truncated file and bad header lengths are refused", "[formats]") {
  const std::string dir = test::TempDir("bad_st_len");
  const std::string tiny = dir + "/tiny.safetensors";
  WriteBytes(tiny, "abc");
  CHECK_THROWS_WITH(OpenSafetensors(tiny), Contains(tiny) && Contains("3 bytes, shorter than"));
  const std::string past = RawSafetensors(dir, "{}", 0, /*claimed_len=*/4096);
  CHECK_THROWS_WITH(OpenSafetensors(past),
                    Contains(past) && Contains("header length 4096 runs past the end"));
  const std::string huge = RawSafetensors(dir, "{}", 0, /*claimed_len=*/1ull << 40);
  CHECK_THROWS_WITH(OpenSafetensors(huge), Contains(huge) && Contains("exceeds the"));
  // A real file cut short inside its data: the last tensor's offsets now run past the end.
  const std::string real = test::RequireShared("models/bytelm-austen/model.safetensors");
  std::ifstream in(real, std::ios::binary);
  std::string bytes(100000, '\0');
  in.read(bytes.data(), bytes.size());
  const std::string cut = dir + "/cut.safetensors";
  WriteBytes(cut, bytes);
  CHECK_THROWS_WITH(OpenSafetensors(cut), Contains(cut) && Contains("run past the end"));
}

TEST_CASE("safetensors: malformed headers name the file and tensor", "[formats]") {
  const std::string dir = test::TempDir("bad_st_header");
  auto open = [&](const std::string& header, size_t data) {
    return OpenSafetensors(RawSafetensors(dir, header, data));
  };
  const std::string path = dir + "/bad.safetensors";
  CHECK_THROWS_WITH(open("{\"a\": {\"dtype\": ", 0), Contains(path) && Contains("malformed JSON"));
  CHECK_THROWS_WITH(open("[1, 2]", 0), Contains(path) && Contains("not a JSON object"));
  CHECK_THROWS_WITH(
      open(R"({"w": {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]}})", 16),
      Contains(path) && Contains("tensor w") && Contains("unknown dtype 'F64'"));
  CHECK_THROWS_WITH(
      open(R"({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}})", 24),
      Contains("tensor w") && Contains("needs 24 bytes") && Contains("span 20"));
  CHECK_THROWS_WITH(
      open(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})", 12),
      Contains(path) && Contains("tensor w") && Contains("run past the end of the data (12"));
  CHECK_THROWS_WITH(
      open(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
              "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})", 16),
      Contains(path) && Contains("tensors a [0, 16) and b [8, 16) overlap"));
  CHECK_THROWS_WITH(
      open(R"({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", 8),
      Contains("tensor w") && Contains("negative"));
  CHECK_THROWS_WITH(
      open(R"({"w": {"dtype": "U8", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}})",
           8),
      Contains("tensor w") && Contains("overflows"));
  CHECK_THROWS_WITH(
      open(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}})", 8),
      Contains("tensor w") && Contains("reversed"));
  CHECK_THROWS_WITH(open(R"({"__metadata__": {"n": 3}})", 0),
                    Contains(path) && Contains("__metadata__ value for 'n'"));
}

TEST_CASE("checkpoint: shapes, missing and unexpected tensors are checked against config.json",
          "[formats]") {
  const std::string dir = TinyHfDir("bad_ckpt");
  const std::string st = dir + "/model.safetensors";
  SECTION("a shape that disagrees with config.json") {
    EditConfig(dir, [](nlohmann::json& j) { j["intermediate_size"] = 12; });
    CHECK_THROWS_WITH(LoadCheckpoint(dir),
                      Contains(st) && Contains("model.layers.0.mlp.gate_proj.weight has shape "
                                               "[16, 8], config.json implies [12, 8]"));
  }
  SECTION("a missing tensor") {
    RewriteTensors(dir, [](auto& t) { t.erase("model.layers.1.mlp.up_proj.weight"); });
    CHECK_THROWS_WITH(LoadCheckpoint(dir),
                      Contains(st) && Contains("missing tensor model.layers.1.mlp.up_proj.weight"));
  }
  SECTION("a missing lm_head when the embedding is not tied") {
    RewriteTensors(dir, [](auto& t) { t.erase("lm_head.weight"); });
    CHECK_THROWS_WITH(LoadCheckpoint(dir), Contains("missing tensor lm_head.weight"));
  }
  SECTION("a bias the config does not enable is refused, not silently dropped") {
    RewriteTensors(dir, [](auto& t) {
      t["model.layers.0.self_attn.q_proj.bias"] = t.at("model.norm.weight");
    });
    CHECK_THROWS_WITH(LoadCheckpoint(dir),
                      Contains(st) && Contains("q_proj.bias is present") &&
                          Contains("attention_bias"));
  }
  SECTION("a tensor for a layer beyond num_hidden_layers") {
    RewriteTensors(dir, [](auto& t) {
      t["model.layers.7.mlp.up_proj.weight"] = t.at("model.layers.1.mlp.up_proj.weight");
    });
    CHECK_THROWS_WITH(LoadCheckpoint(dir), Contains("is for layer 7") && Contains("2 layers"));
  }
  SECTION("unknown extra tensors are ignored") {
    RewriteTensors(dir, [](auto& t) {
      t["model.layers.0.self_attn.rotary_emb.inv_freq"] = t.at("model.norm.weight");
    });
    CHECK(LoadCheckpoint(dir).config.n_layers == 2);
  }
  SECTION("no weights file") {
    fs::remove(st);
    CHECK_THROWS_WITH(LoadCheckpoint(dir), Contains(dir) && Contains("no model.safetensors"));
  }
  SECTION("an index naming a tensor its shard lacks") {
    fs::rename(st, dir + "/shard.safetensors");
    std::ofstream(dir + "/model.safetensors.index.json")
        << R"({"weight_map": {"model.norm.weight": "shard.safetensors",
                              "model.layers.0.mlp.up_proj.weight": "other.safetensors"}})";
    CHECK_THROWS_WITH(LoadCheckpoint(dir), Contains("other.safetensors"));
    std::ofstream(dir + "/model.safetensors.index.json")
        << R"({"weight_map": {"model.nope.weight": "shard.safetensors"}})";
    CHECK_THROWS_WITH(LoadCheckpoint(dir), Contains(dir + "/shard.safetensors") &&
                                               Contains("model.nope.weight listed in"));
  }
}

TEST_CASE("config.json: malformed JSON, unknown architecture and unsupported fields",
          "[formats]") {
  const std::string dir = TinyHfDir("bad_config");
  const std::string cfg = dir + "/config.json";
  SECTION("malformed JSON") {
    WriteBytes(cfg, "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 8,");
    CHECK_THROWS_WITH(LoadCheckpoint(dir), Contains(cfg) && Contains("malformed JSON"));
  }
  SECTION("unknown architecture") {
    EditConfig(dir, [](nlohmann::json& j) { j["architectures"] = {"FalconForCausalLM"}; });
    CHECK_THROWS_WITH(LoadCheckpoint(dir),
                      Contains(cfg) && Contains("unsupported architecture 'FalconForCausalLM'") &&
                          Contains("Qwen3ForCausalLM"));
  }
  SECTION("missing required field") {
    EditConfig(dir, [](nlohmann::json& j) { j.erase("hidden_size"); });
    CHECK_THROWS_WITH(LoadCheckpoint(dir), Contains(cfg) && Contains("missing required field "
                                                                     "hidden_size"));
  }
  SECTION("wrong type") {
    EditConfig(dir, [](nlohmann::json& j) { j["num_hidden_layers"] = "two"; });
    CHECK_THROWS_WITH(LoadCheckpoint(dir),
                      Contains(cfg) && Contains("num_hidden_layers must be an integer"));
  }
  SECTION("rope_scaling of another type") {
    EditConfig(dir, [](nlohmann::json& j) {
      j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
    });
    CHECK_THROWS_WITH(LoadCheckpoint(dir), Contains(cfg) && Contains("rope_scaling type 'yarn'"));
  }
  SECTION("an activation other than silu") {
    EditConfig(dir, [](nlohmann::json& j) { j["hidden_act"] = "gelu"; });
    CHECK_THROWS_WITH(LoadCheckpoint(dir), Contains(cfg) && Contains("hidden_act \"gelu\""));
  }
  SECTION("heads that do not divide into KV groups") {
    EditConfig(dir, [](nlohmann::json& j) { j["num_key_value_heads"] = 3; });
    CHECK_THROWS_WITH(LoadCheckpoint(dir), Contains(cfg) && Contains("multiple of"));
  }
  SECTION("Mistral's sliding window: null is none, a number windows every layer") {
    EditConfig(dir, [](nlohmann::json& j) {
      j["architectures"] = {"MistralForCausalLM"};
      j["sliding_window"] = nullptr;
    });
    CHECK(LoadCheckpoint(dir).config.layer_window.empty());
    EditConfig(dir, [](nlohmann::json& j) { j["sliding_window"] = 16; });
    CHECK(LoadCheckpoint(dir).config.window(0) == 16);
    EditConfig(dir, [](nlohmann::json& j) { j["sliding_window"] = -2; });
    CHECK_THROWS_WITH(LoadCheckpoint(dir),
                      Contains(cfg) && Contains("sliding_window must be positive"));
  }
  SECTION("eos_token_id as a list takes the first") {
    EditConfig(dir, [](nlohmann::json& j) { j["eos_token_id"] = {7, 9}; });
    CHECK(LoadCheckpoint(dir).config.eos_id == 7);
  }
}

TEST_CASE("llama2.c: truncated, padded and nonsense files are refused", "[formats]") {
  const std::string real = test::RequireShared("models/stories260K/stories260K.bin");
  std::ifstream in(real, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(bytes.size() == 1056540);
  const std::string dir = test::TempDir("bad_llama2c");
  const std::string path = dir + "/model.bin";

  WriteBytes(path, bytes.substr(0, 20));
  CHECK_THROWS_WITH(LoadCheckpoint(path), Contains(path) && Contains("shorter than the 28-byte"));
  WriteBytes(path, bytes.substr(0, 500000));
  CHECK_THROWS_WITH(LoadCheckpoint(path),
                    Contains(path) && Contains("file ends inside w1") && Contains("file has 500000"));
  WriteBytes(path, bytes.substr(0, bytes.size() - 4));
  CHECK_THROWS_WITH(LoadCheckpoint(path), Contains("file ends inside freq_cis_imag"));
  WriteBytes(path, bytes + std::string(4, '\0'));
  CHECK_THROWS_WITH(LoadCheckpoint(path),
                    Contains(path) && Contains("has 1056544 bytes") && Contains("exactly 1056540"));
  std::string bad = bytes;
  const int32_t heads = 7;  // 64 is not a multiple of 7
  std::memcpy(bad.data() + 12, &heads, 4);
  WriteBytes(path, bad);
  CHECK_THROWS_WITH(LoadCheckpoint(path), Contains(path) && Contains("not a multiple of n_heads"));
  CHECK_THROWS_WITH(LoadCheckpoint(dir + "/absent.bin"), Contains("absent.bin does not exist"));
}
