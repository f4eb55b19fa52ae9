// `mpirun -np 2 sinkquant ...` against one process on stories260K: the windows are split across
// the ranks and the partial sums combined (core/dist.h), so eval and compare give the same
// numbers up to float reassociation of the sums, profile the same statistics, and quantize
// exports the same ONNX bytes.
// Built only with MPI (CMake passes the launcher's path).
#ifdef SINKQUANT_MPIEXEC

#include <catch2/catch.hpp>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "tests/cli/cli_helpers.h"

using namespace sq::test;

namespace {

// README "Several processes (MPI)": sums over tokens are added per rank and then across ranks,
// a different order of the same double additions.
constexpr double kRelTolerance = 1e-12;

// Runs the binary under mpirun with `ranks` processes; CI runs as root, which Open MPI refuses
// unless told (its documented variables). Idle ranks yield the CPU (mpi_yield_when_idle)
// instead of busy-polling, as ctest runs other tests beside this one. In CI the test still takes
// 3-4 minutes against 45 s alone: the ranks share two cores with the other tests.
RunResult RunMpi(int ranks, const std::string& args) {
  return RunCommand("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
                    "OMPI_MCA_mpi_yield_when_idle=1 OMP_NUM_THREADS=1 " +
                    std::string(SINKQUANT_MPIEXEC) + " -np " + std::to_string(ranks) +
                    " --oversubscribe " + Binary() + " " + args);
}

std::string Stories() {
  return "--model " + RequireShared("models/stories260K/stories260K.bin") + " --tokenizer " +
         RequireShared("models/stories260K/tok512.bin");
}

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

bool IsTiming(const std::string& key) {
  return key.find("seconds") != std::string::npos || key == "tokens_per_s";
}

// Every value of `a` equals `b`'s, floats within kRelTolerance; timings are skipped.
void CheckSame(const nlohmann::json& a, const nlohmann::json& b, const std::string& at = "") {
  INFO("at " << at);
  REQUIRE(a.type() == b.type());
  if (a.is_object()) {
    REQUIRE(a.size() == b.size());
    for (const auto& [k, v] : a.items()) {
      if (!IsTiming(k)) CheckSame(v, b.at(k), at + "." + k);
    }
  } else if (a.is_array()) {
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) CheckSame(a[i], b[i], at + "[" + std::to_string(i) + "]");
  } else if (a.is_number_float()) {
    CHECK(b.get<double>() == Approx(a.get<double>()).epsilon(kRelTolerance).margin(1e-300));
  } else {
    CHECK(a == b);
  }
}

}  // namespace

TEST_CASE("mpirun -np 2: eval, compare, profile and the ONNX export match one process",
          "[cli][real][mpi]") {
  const std::string dir = TempDir("mpi");
  const std::string data = " --data " + RequireShared("corpora/tinystories-valid.txt") +
                           " --calib " + RequireShared("corpora/tinystories-calib.txt") +
                           " --ctx 128 --max-tokens 2048 --calib-tokens 2048 --quiet ";
  auto both = [&](const std::string& args, const std::string& out1, const std::string& out2) {
    const RunResult one = RunSinkquant(args + out1);
    INFO(one.output);
    REQUIRE(one.exit_code == 0);
    const RunResult two = RunMpi(2, args + out2);
    INFO(two.output);
    REQUIRE(two.exit_code == 0);
  };
  SECTION("eval float and W4A4 GPTQ") {
    const std::string eval = "eval " + Stories() + data + "--method gptq --w-bits 4 --a-bits 4";
    both(eval, " --json " + dir + "/1.json", " --json " + dir + "/2.json");
    CheckSame(ReadJson(dir + "/1.json"), ReadJson(dir + "/2.json"));
  }
  SECTION("compare") {
    const std::string cmp =
        "compare " + Stories() + data + "--methods fp,gptq,smooth,rotate,gptq+outliers";
    both(cmp, " --json " + dir + "/1.json", " --json " + dir + "/2.json");
    CheckSame(ReadJson(dir + "/1.json"), ReadJson(dir + "/2.json"));
  }
  SECTION("eval --method auto: every rank makes the one process's choice") {
    // W4A16: the candidates are the base recipes alone (the modifiers are for quantized
    // activations or KV), which keeps the section short; +seq across ranks is the next one's.
    const std::string eval = "eval " + Stories() + data +
                             "--method auto --w-bits 4 --a-bits 16 --learn-steps 10";
    both(eval, " --json " + dir + "/1.json", " --json " + dir + "/2.json");
    const nlohmann::json one = ReadJson(dir + "/1.json"), two = ReadJson(dir + "/2.json");
    const std::string chosen = one.at("recipe").at("method");
    CHECK((chosen == "gptq" || chosen == "rotate-gptq" || chosen == "rotate-learned-gptq"));
    CheckSame(one, two);
  }
  SECTION("quantize +seq: GPTAQ's cross term and the clip search added across ranks") {
    // The calibration stream runs W4A4KV4 (+seq's quantized activations and KV), each rank on
    // its block of the windows; the cross term is added in rank order like the Hessians, so
    // the weights, clip ratios and ONNX bytes are one process's.
    const std::string q = "quantize " + Stories() + data +
                          "--method rotate-gptq+act-clip+seq --w-bits 4 --a-bits 4 --kv-bits 4";
    both(q, " --out " + dir + "/s1", " --out " + dir + "/s2");
    for (const char* f : {"/onnx/model.onnx", "/onnx/model.onnx_data"}) {
      INFO(f);
      CHECK(ReadBytes(dir + "/s1" + f) == ReadBytes(dir + "/s2" + f));
    }
    const nlohmann::json one = ReadJson(dir + "/s1/quantization.json");
    CHECK(one.at("recipe") == "rotate-gptq+act-clip+seq");
    CheckSame(one, ReadJson(dir + "/s2/quantization.json"));
  }
  SECTION("profile") {
    const std::string prof = "profile " + Stories() + " --data " +
                             RequireShared("corpora/tinystories-valid.txt") +
                             " --max-tokens 4096 --quiet";
    both(prof, " --out " + dir + "/p1", " --out " + dir + "/p2");
    CheckSame(ReadJson(dir + "/p1/profile.json"), ReadJson(dir + "/p2/profile.json"));
  }
  SECTION("quantize: the same ONNX bytes, measured the same") {
    const std::string q = "quantize " + Stories() + data + "--method gptq --w-bits 4 --a-bits 4";
    both(q, " --out " + dir + "/q1", " --out " + dir + "/q2");
    for (const char* f : {"/onnx/model.onnx", "/onnx/model.onnx_data"}) {
      INFO(f);
      CHECK(ReadBytes(dir + "/q1" + f) == ReadBytes(dir + "/q2" + f));
    }
    CheckSame(ReadJson(dir + "/q1/quantization.json"), ReadJson(dir + "/q2/quantization.json"));
  }
}

#endif  // SINKQUANT_MPIEXEC
