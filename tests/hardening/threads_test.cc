// Results do not depend on the thread count: the real binary run with --threads 1 and
// --threads 2 must write byte-identical profile statistics, ONNX models (quantized weights,
// scales) and reference logits. Widths matter: at hidden 64 every product fits one cache block,
// and Eigen's own threaded GEMM changed GPTQ's and the learned rotation's sums only from 512 on.
#include <catch2/catch.hpp>

#include "tests/cli/cli_helpers.h"
#include "tests/test_paths.h"

using namespace sq;

namespace {

// Byte-for-byte comparison with a short note on the first difference.
void RequireSameBytes(const std::string& a, const std::string& b) {
  const std::string x = test::ReadBytes(a), y = test::ReadBytes(b);
  INFO(a << " (" << x.size() << " bytes) vs " << b << " (" << y.size() << " bytes)");
  size_t i = 0;
  while (i < x.size() && i < y.size() && x[i] == y[i]) ++i;
  INFO("first difference at byte " << i);
  REQUIRE(x.size() > 0);
  REQUIRE(x == y);
}

}  // namespace

TEST_CASE("profile statistics are identical with 1 and 2 threads", "[hardening]") {
  const std::string model = test::RequireShared("models/stories260K/stories260K.bin");
  const std::string data = test::RequireShared("corpora/tinystories-valid.txt");
  const std::string dir = test::TempDir("hardening-threads-profile");
  for (int t : {1, 2}) {
    const auto r = test::RunSinkquant("profile --model " + model + " --data " + data +
                                      " --max-tokens 2048 --out " + dir + "/t" +
                                      std::to_string(t) + " --threads " + std::to_string(t));
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
  }
  RequireSameBytes(dir + "/t1/profile.json", dir + "/t2/profile.json");
}

TEST_CASE("quantized ONNX bytes and logits are identical with 1 and 2 threads", "[hardening]") {
  const std::string model = test::RequireShared("models/stories260K/stories260K.bin");
  const std::string calib = test::RequireShared("corpora/tinystories-calib.txt");
  const std::string data = test::RequireShared("corpora/tinystories-valid.txt");
  const std::string dir = test::TempDir("hardening-threads-quantize");
  for (int t : {1, 2}) {
    const std::string ts = std::to_string(t);
    const auto r = test::RunSinkquant(
        "quantize --model " + model + " --out " + dir + "/t" + ts + ".onnx --method gptq --calib " +
        calib + " --calib-tokens 1024 --w-bits 4 --w-group 32 --a-bits 4 --kv-bits 4" +
        " --external-threshold 100000000 --logits-out " + dir + "/ref" + ts + ".json --data " +
        data + " --max-tokens 512 --threads " + ts);
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
  }
  RequireSameBytes(dir + "/t1.onnx", dir + "/t2.onnx");
  RequireSameBytes(dir + "/ref1.json.f32", dir + "/ref2.json.f32");
}

TEST_CASE("at hidden 512 calibrated recipes write identical ONNX bytes with 1 and 2 threads",
          "[hardening]") {
  const std::string tokenizer = test::RequireShared("models/bytelm-austen/tokenizer.json");
  const std::string calib = test::RequireShared("corpora/tinystories-calib.txt");
  const std::string dir = test::TempDir("hardening-threads-wide");
  const std::string config = test::WriteTemp(dir, "config.json", R"({
    "architectures": ["LlamaForCausalLM"], "hidden_size": 512, "intermediate_size": 1024,
    "num_hidden_layers": 2, "num_attention_heads": 8, "num_key_value_heads": 4,
    "vocab_size": 264, "bos_token_id": 256, "max_position_embeddings": 512,
    "initializer_range": 0.02, "tie_word_embeddings": false})");
  const auto made = test::RunSinkquant("random-model --config " + config +
                                       " --dtype f32 --seed 3 --out " + dir + "/model");
  INFO(made.output);
  REQUIRE(made.exit_code == 0);
  // Between them: GPTQ, its +seq retarget, the learned rotation, clip search, 8-bit outliers;
  // both wrote different bytes with 1 and 2 threads while Eigen threaded its own GEMM.
  const std::pair<std::string, std::string> runs[] = {
      {"rotate-learned-gptq+act-clip+seq", " --learn-steps 5"}, {"rotate-gptq+outliers", ""}};
  for (const auto& [method, extra] : runs) {
    for (int t : {1, 2}) {
      const std::string ts = std::to_string(t);
      const auto r = test::RunSinkquant(
          "quantize --model " + dir + "/model --tokenizer " + tokenizer + " --out " + dir + "/t" +
          ts + ".onnx --method " + method + extra + " --calib " + calib +
          " --calib-tokens 1024 --ctx 256 --w-bits 4 --a-bits 4 --external-threshold 100000000" +
          " --threads " + ts);
      INFO(method << " --threads " << t << "\n" << r.output);
      REQUIRE(r.exit_code == 0);
    }
    INFO(method);
    RequireSameBytes(dir + "/t1.onnx", dir + "/t2.onnx");
  }
}
