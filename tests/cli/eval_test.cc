// `sinkquant generate` and `sinkquant eval` end to end through the real binary on the real
// stories260K checkpoint, and their answers to bad input.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/cli/cli_helpers.h"

using namespace sq::test;

namespace {

std::string Stories() {
  return "--model " + RequireShared("models/stories260K/stories260K.bin") + " --tokenizer " +
         RequireShared("models/stories260K/tok512.bin");
}

}  // namespace

TEST_CASE("generate from BOS prints Karpathy's documented story opening", "[cli][real]") {
  const RunResult r = RunSinkquant("generate " + Stories() + " --steps 40");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::StartsWith("Once upon a time, there was a little girl named Lily. "
                                         "She loved to play outside in the park."));
}

TEST_CASE("eval on TinyStories gives the published validation loss", "[cli][real]") {
  const std::string dir = TempDir("eval_stories");
  const RunResult r = RunSinkquant("eval " + Stories() + " --data " +
                                   RequireShared("corpora/tinystories-valid.txt") +
                                   " --max-tokens 20000 --json " + dir + "/eval.json");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("PPL = "));
  std::ifstream in(dir + "/eval.json");
  const auto j = nlohmann::json::parse(in);
  CHECK(j["tokens"].get<long>() == 20000);
  // llama2.c reports a validation loss of about 1.30 for stories260K.
  CHECK(j["nll"].get<double>() > 1.1);
  CHECK(j["nll"].get<double>() < 1.4);
  CHECK(j["ppl"].get<double>() == Approx(std::exp(j["nll"].get<double>())).epsilon(1e-9));
}

TEST_CASE("W4A4 eval runs the integer kernels and matches --fake-quant exactly", "[cli][real]") {
  const std::string dir = TempDir("eval_kernels");
  const std::string args = "eval " + Stories() + " --data " +
                           RequireShared("corpora/tinystories-valid.txt") +
                           " --max-tokens 8000 --w-bits 4 --a-bits 4 --w-group 32 --method rotate";
  const RunResult integer = RunSinkquant(args + " --json " + dir + "/int.json");
  INFO(integer.output);
  REQUIRE(integer.exit_code == 0);
  CHECK_THAT(integer.output, Catch::Contains("kernels: integer W4A4"));
  const RunResult fake = RunSinkquant(args + " --fake-quant --json " + dir + "/fq.json");
  INFO(fake.output);
  REQUIRE(fake.exit_code == 0);
  CHECK_THAT(fake.output, Catch::Contains("kernels: fake-quant float (--fake-quant)"));
  std::ifstream a(dir + "/int.json"), b(dir + "/fq.json");
  const auto ji = nlohmann::json::parse(a), jf = nlohmann::json::parse(b);
  CHECK(ji["integer_linears"].get<int>() == 35);  // 5 layers x 7; the lm_head stays float
  CHECK(jf["integer_linears"].get<int>() == 0);
  // Bit-identical logits: every printed statistic agrees exactly, not merely closely.
  CHECK(ji["quant"]["nll"].get<double>() == jf["quant"]["nll"].get<double>());
  CHECK(ji["kld"].get<double>() == jf["kld"].get<double>());
  CHECK(ji["quant"]["ppl"].get<double>() > 1.2 * ji["fp"]["ppl"].get<double>());
}

TEST_CASE("eval refuses bad input with one clear line and a non-zero exit", "[cli]") {
  const std::string dir = TempDir("eval_bad");
  const std::string empty = WriteTemp(dir, "empty.txt", "  \n");
  const std::string latin1 = WriteTemp(dir, "latin1.txt", "caf\xe9 au lait\n");
  struct Case {
    std::string args, expect;
  } cases[] = {
      {"eval --data x.txt", "missing required flag --model"},
      {"eval " + Stories() + " --data " + empty, "data file is empty"},
      {"eval " + Stories() + " --data " + latin1, "not valid UTF-8 at byte 3"},
      {"eval " + Stories() + " --data " + dir + "/nope.txt", "cannot open " + dir + "/nope.txt"},
      {"eval " + Stories() + " --data " + latin1 + " --bogus 1", "unknown flag --bogus"},
      {"eval " + Stories() + " --data " + latin1 + " --ctx 4096", "exceeds the model's"},
      {"eval " + Stories() + " --data " + latin1 + " --ctx abc", "expects an integer"},
      {"eval --model " + dir + " --data " + latin1, dir},
      {"frobnicate", "unknown command 'frobnicate'"},
  };
  for (const Case& c : cases) {
    const RunResult r = RunSinkquant(c.args);
    INFO(c.args << "\n" << r.output);
    CHECK(r.exit_code != 0);
    CHECK_THAT(r.output, Catch::Contains(c.expect));
  }
}
