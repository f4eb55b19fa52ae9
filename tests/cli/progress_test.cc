// Progress and the peak-memory line go to stderr only: stdout and JSON are the same with and
// without --quiet, and --quiet leaves stderr empty.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/test_paths.h"

namespace {

std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// The JSON without the fields that measure time (they differ between any two runs).
nlohmann::json Untimed(const std::string& path) {
  nlohmann::json j = nlohmann::json::parse(Slurp(path));
  for (const char* k : {"tokens_per_s", "quantize_seconds"}) j.erase(k);
  for (const char* side : {"fp", "quant"}) {
    if (j.contains(side)) j[side].erase("tokens_per_s");
  }
  return j;
}

}  // namespace

TEST_CASE("progress and peak memory: stderr only, silenced by --quiet", "[cli][progress]") {
  const std::string dir = sq::test::TempDir("progress");
  const std::string S = sq::test::RequireShared("models/stories260K");
  const std::string args = " eval --model " + S + "/stories260K.bin --tokenizer " + S +
                           "/tok512.bin --data " +
                           sq::test::RequireShared("corpora/tinystories-valid.txt") +
                           " --calib " + sq::test::RequireShared("corpora/tinystories-calib.txt") +
                           " --method rotate --w-bits 4 --a-bits 4 --max-tokens 600"
                           " --calib-tokens 300 --threads 1";
  auto run = [&](const std::string& tag, const std::string& extra) {
    const std::string cmd = sq::test::Binary() + args + extra + " --json " + dir + "/" + tag +
                            ".json > " + dir + "/" + tag + ".out 2> " + dir + "/" + tag + ".err";
    REQUIRE(std::system(cmd.c_str()) == 0);
  };
  run("loud", "");
  run("quiet", " --quiet");
  const std::string loud_err = Slurp(dir + "/loud.err"), quiet_err = Slurp(dir + "/quiet.err");
  // Off a terminal: a line per step at most a second apart, and always the last step.
  CHECK(loud_err.find("quantize+eval: layer 0/5 (  0%), started") != std::string::npos);
  CHECK(loud_err.find("quantize+eval: layer 5/5 (100%)") != std::string::npos);
  CHECK(loud_err.find("tokens/s, took") != std::string::npos);
  CHECK(loud_err.find("peak memory: ") != std::string::npos);
  CHECK(loud_err.find('\r') == std::string::npos);  // no terminal redraws in a log
  CHECK(quiet_err.empty());
  // stdout differs only in the line that reports time.
  auto untimed_lines = [](const std::string& text) {
    std::string out, line;
    std::istringstream in(text);
    while (std::getline(in, line)) {
      if (line.rfind("time:", 0) != 0 && line.rfind("quantized in", 0) != 0) out += line + "\n";
    }
    return out;
  };
  const std::string loud_out = Slurp(dir + "/loud.out");
  CHECK(loud_out.find("quant PPL") != std::string::npos);
  CHECK(untimed_lines(loud_out) == untimed_lines(Slurp(dir + "/quiet.out")));
  CHECK(Untimed(dir + "/loud.json") == Untimed(dir + "/quiet.json"));
}
