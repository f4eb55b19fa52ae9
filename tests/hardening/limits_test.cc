// Limits: files that claim absurd sizes are refused with a clear message before anything large
// is allocated (each case here runs on a file of a few hundred bytes).
#include <catch2/catch.hpp>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "formats/hf_config.h"
#include "formats/llama2c.h"
#include "formats/llama2c_tokenizer.h"
#include "formats/safetensors.h"
#include "formats/tokenizer.h"
#include "model/loader.h"
#include "model/model.h"
#include "tests/test_paths.h"

using namespace sq;
using Catch::Matchers::Contains;

namespace {

std::string Write(const std::string& name, const std::string& bytes) {
  static const std::string dir = test::TempDir("hardening-limits");
  const std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  return path;
}

std::string Le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}

std::string Safetensors(const std::string& header, size_t data_bytes) {
  return Le64(header.size()) + header + std::string(data_bytes, '\0');
}

std::string Llama2cHeader(std::vector<int32_t> h) {
  std::string s(h.size() * 4, '\0');
  std::memcpy(s.data(), h.data(), s.size());
  return s + std::string(64, '\0');
}

}  // namespace

TEST_CASE("safetensors header claiming gigabytes of JSON is refused", "[hardening]") {
  const std::string p = Write("huge_header.safetensors", Le64(5ull << 30) + "{}");
  REQUIRE_THROWS_WITH(OpenSafetensors(p), Contains("header length 5368709120 exceeds the"));
  // Under the limit but longer than the file: refused before the JSON is read.
  const std::string q = Write("long_header.safetensors", Le64(50ull << 20) + "{}");
  REQUIRE_THROWS_WITH(OpenSafetensors(q), Contains("runs past the end of the file"));
}

TEST_CASE("safetensors tensor claiming more elements than the file holds is refused",
          "[hardening]") {
  const std::string p = Write(
      "big_tensor.safetensors",
      Safetensors(R"({"w":{"dtype":"F32","shape":[1000000000],"data_offsets":[0,4000000000]}})", 16));
  REQUIRE_THROWS_WITH(OpenSafetensors(p), Contains("run past the end of the data (16 bytes)"));
  const std::string q = Write(
      "short_span.safetensors",
      Safetensors(R"({"w":{"dtype":"F32","shape":[1000000000],"data_offsets":[0,16]}})", 16));
  REQUIRE_THROWS_WITH(OpenSafetensors(q), Contains("needs 4000000000 bytes"));
  const std::string r = Write(
      "overflow.safetensors",
      Safetensors(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}})", 16));
  REQUIRE_THROWS_WITH(OpenSafetensors(r), Contains("overflows"));
}

TEST_CASE("a vocab of a billion entries is refused in config.json", "[hardening]") {
  nlohmann::json j = {{"architectures", {"LlamaForCausalLM"}}, {"hidden_size", 8},
                      {"intermediate_size", 16}, {"num_hidden_layers", 1},
                      {"num_attention_heads", 2}, {"num_key_value_heads", 2},
                      {"vocab_size", 1000000000}, {"max_position_embeddings", 16},
                      {"rms_norm_eps", 1e-5}};
  REQUIRE_THROWS_WITH(HfConfigFromJson(j, "config.json"), Contains("implausibly large"));
  j["vocab_size"] = 32;
  REQUIRE_NOTHROW(HfConfigFromJson(j, "config.json"));  // the same config with a sane vocab
}

TEST_CASE("a vocab or layer count of a billion is refused in a llama2.c header", "[hardening]") {
  ModelConfig c;
  ModelWeights w;
  const std::string p = Write("vocab.bin", Llama2cHeader({8, 16, 1, 2, 2, 1000000000, 4}));
  REQUIRE_THROWS_WITH(LoadLlama2c(p, &c, &w), Contains("implausibly large"));
  const std::string q = Write("layers.bin", Llama2cHeader({8, 16, 2000000000, 2, 2, 4, 4}));
  REQUIRE_THROWS_WITH(LoadLlama2c(q, &c, &w), Contains("implausibly large"));
  const std::string r = Write("negvocab.bin", Llama2cHeader({8, 16, 1, 2, 2, -2147483647, 4}));
  REQUIRE_THROWS_WITH(LoadLlama2c(r, &c, &w), Contains("vocab_size -2147483647 is invalid"));
}

TEST_CASE("a tokenizer.json vocab id of a billion is refused", "[hardening]") {
  const std::string p = Write("tokenizer.json", R"({"model": {"type": "BPE",
      "vocab": {"a": 0, "b": 1000000000}, "merges": []}})");
  REQUIRE_THROWS_WITH(LoadHfTokenizer(p), Contains("has id 1000000000 but the vocab has 2 entries"));
}

// Found by hf_tokenizer_fuzz in CI: an id too large for int64 parses as a float, and
// nlohmann's get<int>() cast it (undefined behaviour under UBSan). The input is kept in
// tests/fuzz/corpus/hf_tokenizer_fuzz/ too.
TEST_CASE("tokenizer.json ids that are not ints are refused by name", "[hardening]") {
  const std::string p = Write("float_id.json", R"({"model": {"type": "BPE",
      "vocab": {"a": 0, "b": 11111111111111111111111111111111111111111}, "merges": []}})");
  REQUIRE_THROWS_WITH(LoadHfTokenizer(p), Contains("vocab entry \"b\" id must be an integer"));
  const std::string q = Write("half_id.json", R"({"model": {"type": "BPE",
      "vocab": {"a": 0, "b": 2.5}, "merges": []}})");
  REQUIRE_THROWS_WITH(LoadHfTokenizer(q), Contains("must be an integer, got 2.5"));
  const std::string r = Write("added_id.json", R"({"model": {"type": "BPE",
      "vocab": {"a": 0}, "merges": []}, "added_tokens": [{"id": 1e116, "content": "<s>"}]})");
  REQUIRE_THROWS_WITH(LoadHfTokenizer(r), Contains("added token id must be an integer"));
  const std::string t = Write("special_id.json", R"({"model": {"type": "BPE",
      "vocab": {"a": 0}, "merges": []}, "post_processor": {"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A"}}],
      "special_tokens": {"<s>": {"id": "<s>", "ids": [-3e40]}}}})");
  REQUIRE_THROWS_WITH(LoadHfTokenizer(t), Contains("special token \"<s>\" id must be an integer"));
}

TEST_CASE("a llama2.c tokenizer asked for a billion tokens stops at the end of the file",
          "[hardening]") {
  std::string bytes(4, '\0');
  const std::string p = Write("tok.bin", bytes);
  REQUIRE_THROWS_WITH(ReadLlama2cVocab(p, 1000000000),
                      Contains("truncated at byte 4 while reading token 0 of 1000000000"));
}

TEST_CASE("a sequence past max_position_embeddings is refused", "[hardening]") {
  const LoadedModel lm =
      LoadModel(test::RequireShared("models/stories260K/stories260K.bin"),
                test::RequireShared("models/stories260K/tok512.bin"));
  const int max_pos = lm.model.config.max_position;
  std::vector<int> tokens(max_pos + 1, 1);
  REQUIRE_THROWS_WITH(Forward(lm.model, tokens),
                      Contains("exceeds max_position_embeddings " + std::to_string(max_pos)));
  tokens.resize(max_pos);
  REQUIRE(Forward(lm.model, tokens).allFinite());  // exactly max_position is fine
}
