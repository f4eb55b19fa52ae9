// `sinkquant convert` end to end: the HF folder it writes must compute the same logits as the
// llama2.c .bin (adjacent RoPE) and tokenize the same way.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "formats/checkpoint.h"
#include "formats/safetensors.h"
#include "formats/tokenizer.h"
#include "model/model.h"
#include "tests/test_paths.h"
#include "tests/test_util.h"

using namespace sq;
namespace fs = std::filesystem;

namespace {

using test::kLogitTolerance;

// Runs the sinkquant binary; returns its exit code and puts stdout+stderr in `output`.
int RunSinkquant(const std::string& args, std::string* output) {
  const std::string log = test::TempDir("convert_log") + "/out.txt";
  const int status = std::system((test::Binary() + " " + args + " > " + log + " 2>&1").c_str());
  std::ifstream in(log);
  std::stringstream ss;
  ss << in.rdbuf();
  *output = ss.str();
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_CASE("convert: the HF folder gives the .bin's logits and tokenization", "[cli]") {
  const std::string bin = test::RequireShared("models/stories260K/stories260K.bin");
  const std::string tok = test::RequireShared("models/stories260K/tok512.bin");
  const std::string out = test::TempDir("convert") + "/stories260K-hf";
  std::string log;
  REQUIRE(RunSinkquant("convert --model " + bin + " --tokenizer " + tok + " --out " + out, &log) ==
          0);
  CHECK_THAT(log, Catch::Contains("rotate_half"));
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json",
                        "tokenizer_config.json"}) {
    CHECK(fs::is_regular_file(fs::path(out) / f));
  }
  CHECK_FALSE(fs::exists(out + ".tmp"));
  SafetensorsFile st = OpenSafetensors(out + "/model.safetensors");
  CHECK(st.tensors.at("model.layers.0.self_attn.q_proj.weight").dtype == DType::kF32);

  Checkpoint a = LoadCheckpoint(bin);
  Checkpoint b = LoadCheckpoint(out);
  CHECK(a.config.rope_pairing == RopePairing::kAdjacent);
  CHECK(b.config.rope_pairing == RopePairing::kHalf);
  CHECK(b.tokenizer_path == out + "/tokenizer.json");

  auto tok_bin = LoadLlama2cTokenizer(tok, a.config.vocab);
  auto tok_hf = LoadHfTokenizer(b.tokenizer_path);
  const std::string text = "Once upon a time, a little dog named Max found a shiny red ball.";
  const std::vector<int> ids = tok_bin->Encode(text, true);
  CHECK(tok_hf->Encode(text, true) == ids);
  REQUIRE(ids.size() > 10);
  CHECK(ids[0] == 1);  // BOS

  const Model ma = BuildDenseModel(a.config, a.weights);
  const Model mb = BuildDenseModel(b.config, b.weights);
  const Mat la = Forward(ma, ids), lb = Forward(mb, ids);
  REQUIRE(la.rows() == static_cast<Eigen::Index>(ids.size()));
  REQUIRE(lb.rows() == la.rows());
  REQUIRE(lb.cols() == la.cols());
  const float diff = (la - lb).cwiseAbs().maxCoeff();
  INFO("max |logit diff| = " << diff);
  CHECK(diff < kLogitTolerance);
  // Not vacuous: with q/k left unpermuted, the rotate_half model computes different logits.
  ModelConfig unpermuted = a.config;
  unpermuted.rope_pairing = RopePairing::kHalf;
  const Mat lc = Forward(BuildDenseModel(unpermuted, a.weights), ids);
  CHECK((la - lc).cwiseAbs().maxCoeff() > 100 * kLogitTolerance);
}

TEST_CASE("convert: refuses a non-empty --out unless --force, and bad inputs", "[cli]") {
  const std::string bin = test::RequireShared("models/stories260K/stories260K.bin");
  const std::string dir = test::TempDir("convert_refuse");
  const std::string out = dir + "/out";
  fs::create_directories(out);
  std::ofstream(out + "/keep.txt") << "precious";
  std::string log;
  CHECK(RunSinkquant("convert --model " + bin + " --out " + out, &log) == 1);
  CHECK_THAT(log, Catch::Contains(out) && Catch::Contains("not empty") &&
                      Catch::Contains("--force"));
  CHECK(fs::exists(out + "/keep.txt"));
  CHECK_FALSE(fs::exists(out + "/config.json"));

  // Without --tokenizer the tok512.bin beside the model is used; --force replaces the folder.
  CHECK(RunSinkquant("convert --model " + bin + " --out " + out + " --force", &log) == 0);
  CHECK_THAT(log, Catch::Contains("tok512.bin"));
  CHECK_FALSE(fs::exists(out + "/keep.txt"));
  CHECK(fs::exists(out + "/tokenizer.json"));
  for (const auto& e : fs::directory_iterator(dir)) CHECK(e.path().filename() == "out");

  const std::string cut = dir + "/cut.bin";
  {
    std::ifstream in(bin, std::ios::binary);
    std::string bytes(1000, '\0');
    in.read(bytes.data(), bytes.size());
    std::ofstream(cut, std::ios::binary).write(bytes.data(), bytes.size());
  }
  CHECK(RunSinkquant("convert --model " + cut + " --tokenizer " +
                         test::RequireShared("models/stories260K/tok512.bin") + " --out " + dir +
                         "/out2",
                     &log) == 1);
  CHECK_THAT(log, Catch::Contains(cut) && Catch::Contains("file ends inside"));
  CHECK_FALSE(fs::exists(dir + "/out2"));
  CHECK(RunSinkquant("convert --model " + bin + " --out " + dir + "/out3 --bogus 1", &log) == 1);
  CHECK_THAT(log, Catch::Contains("unknown flag --bogus"));
}
