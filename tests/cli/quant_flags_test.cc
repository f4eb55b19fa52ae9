// `compare`, `eval` and `quantize` take the same quantization flags through one parser: the
// same argv is accepted by all three, and a bad value gets the same message from each.
#include <catch2/catch.hpp>

#include "tests/cli/cli_helpers.h"

using namespace sq::test;

namespace {

// Each command with its required flags and `method` (when not empty); the model does not
// exist, so a run that gets past flag parsing stops at loading it, and the flag table's verdict
// is what the output shows.
std::vector<std::string> Commands(const std::string& dir, const std::string& method = "") {
  const std::string model = "--model " + dir + "/missing.bin";
  const std::string m = method.empty() ? "" : " --method " + method;
  return {"compare " + model + " --calib " + dir + "/c.txt --data " + dir + "/d.txt" +
              (method.empty() ? "" : " --methods fp," + method),
          "eval " + model + " --data " + dir + "/d.txt" + m,
          "quantize " + model + " --out " + dir + "/q.onnx" + m};
}

// The error line without the command's name: "error: eval: flag --x ..." -> "flag --x ...".
std::string ErrorOf(const std::string& output) {
  std::string e = output.substr(output.find("error: ") + 7);
  e = e.substr(0, e.find('\n'));
  for (const char* cmd : {"compare: ", "eval: ", "quantize: "}) {
    if (e.rfind(cmd, 0) == 0) e = e.substr(std::string(cmd).size());
  }
  return e;
}

}  // namespace

TEST_CASE("compare, eval and quantize accept and refuse the same quantization flags", "[cli]") {
  const std::string dir = TempDir("quant_flags");
  const std::string all =
      " --w-bits 4 --a-bits 8 --kv-bits 4 --w-group 32 --kv-group 8 --a-clip 0.9 --w-asym"
      " --no-clip-search --act-order --gptq-block 64 --gptq-damp 0.1 --keep-float lm_head,down"
      " --sink-ratio 32 --seed 3";
  for (const std::string& cmd : Commands(dir, "gptq+sink-aware")) {
    const RunResult r = RunSinkquant(cmd + all);
    INFO(cmd << "\n" << r.output);
    CHECK(r.exit_code == 1);
    CHECK_THAT(ErrorOf(r.output), Catch::EndsWith("missing.bin does not exist"));
  }
  struct Case {
    std::string flags, expect;
  } cases[] = {
      {"--w-bits 32", "flag --w-bits must be one of 2, 3, 4, 5, 6, 7, 8, 16, got 32"},
      {"--kv-bits 1", "flag --kv-bits must be one of"},
      {"--a-clip nan", "flag --a-clip expects a finite number, got 'nan'"},
      {"--alpha 2", "flag --alpha must be between 0 and 1, got 2"},
      {"--sink-ratio 0.5", "flag --sink-ratio must be between 1 and 1e+09, got 0.5"},
      {"--gptq-block 0", "flag --gptq-block must be between 1 and 65536, got 0"},
      {"--outlier-bits 16", "flag --outlier-bits must be between 2 and 8, got 16"},
      {"--outlier-channels 0", "flag --outlier-channels must be between 1 and 1048576, got 0"},
      {"--gptq-damp 0", "flag --gptq-damp must be between 1e-09 and 1000, got 0"},
      {"--w-asym yes", "flag --w-asym takes no value, got 'yes'"},
      {"--keep-float lm_head,bogus", "unknown linear 'bogus'"},
      {"--seed -1", "flag --seed must be between 0 and"},
  };
  for (const Case& c : cases) {
    for (const std::string& cmd : Commands(dir)) {
      const RunResult r = RunSinkquant(cmd + " " + c.flags);
      INFO(cmd << " " << c.flags << "\n" << r.output);
      CHECK(r.exit_code == 1);
      CHECK_THAT(ErrorOf(r.output), Catch::StartsWith(c.expect));
    }
  }
}

TEST_CASE("a recipe's own flag given to methods that do not read it is refused", "[cli]") {
  const std::string dir = TempDir("quant_flags_unread");
  struct Case {
    std::string method, flags, expect;
  } cases[] = {
      {"rotate", "--alpha 0.7", "--alpha: not read by --method"},
      {"rtn", "--act-order", "--act-order: not read by --method"},
      {"rotate-gptq", "--learn-steps 5", "--learn-steps: not read by --method"},
      {"smooth", "--sink-ratio 8", "--sink-ratio: not read by --method"},
      {"", "--a-clip-min 0.7", "--a-clip-min: not read by"},
      {"rotate-gptq", "--outlier-channels 8", "--outlier-channels: not read by --method"},
  };
  for (const Case& c : cases) {
    for (const std::string& cmd : Commands(dir, c.method)) {
      const RunResult r = RunSinkquant(cmd + " " + c.flags);
      INFO(cmd << " " << c.flags << "\n" << r.output);
      CHECK(r.exit_code == 1);
      CHECK_THAT(ErrorOf(r.output), Catch::StartsWith(c.expect));
    }
  }
  // Where it says who does read it, and where one method of a list reads it, it runs on.
  const RunResult r = RunSinkquant(Commands(dir, "rotate")[1] + " --alpha 0.7");
  CHECK_THAT(ErrorOf(r.output), Catch::EndsWith("(read by smooth, smooth-rotate)"));
  const RunResult both = RunSinkquant(Commands(dir, "rotate,smooth")[0] + " --alpha 0.7");
  CHECK_THAT(ErrorOf(both.output), Catch::EndsWith("missing.bin does not exist"));
}
