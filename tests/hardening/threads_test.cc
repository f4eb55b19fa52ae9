// Results do not depend on the thread count: the real binary run with --threads 1 and
// --threads 2 must write byte-identical profile statistics, ONNX models (quantized weights,
// scales) and reference logits.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/cli/cli_helpers.h"
#include "tests/test_paths.h"

using namespace sq;

namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Byte-for-byte comparison with a short note on the first difference.
void RequireSameBytes(const std::string& a, const std::string& b) {
  const std::string x = Slurp(a), y = Slurp(b);
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
