// `sinkquant profile` through the real binary: bad input gives one clear error line; a real
// run writes a profile.json that follows docs/profile-schema.md and a self-contained report.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "formats/sha256.h"
#include "tests/cli/cli_helpers.h"
#include "tests/test_paths.h"

using namespace sq::test;

namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Stories() { return RequireShared("models/stories260K/stories260K.bin"); }

}  // namespace

TEST_CASE("profile refuses an empty data file, --max-tokens 0 and an unwritable --out",
          "[calib]") {
  const std::string dir = TempDir("profile_bad");
  const std::string model = Stories();
  const std::string data = RequireShared("corpora/tinystories-calib.txt");
  const std::string empty = WriteTemp(dir, "empty.txt", "");

  RunResult r = RunSinkquant("profile --model " + model + " --data " + empty + " --out " + dir + "/o");
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("empty.txt: data file is empty"));

  r = RunSinkquant("profile --model " + model + " --data " + data + " --max-tokens 0 --out " + dir + "/o");
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("--max-tokens must be a positive number of tokens, got 0"));

  // A file where a directory should be: --out cannot be created.
  const std::string file = WriteTemp(dir, "file", "x");
  r = RunSinkquant("profile --model " + model + " --data " + data + " --out " + file + "/sub");
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("--out " + file + "/sub: cannot create the directory"));
  r = RunSinkquant("profile --model " + model + " --data " + data + " --out /proc/sinkquant-profile");
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("--out /proc/sinkquant-profile"));

  r = RunSinkquant("profile --model " + model + " --data " + data + " --out " + dir + "/o --sink-threshold 1");
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("unknown flag --sink-threshold"));
  CHECK_FALSE(std::filesystem::exists(dir + "/o/profile.json"));
}

TEST_CASE("profile on stories260K: schema, data hash, no invented sinks, same for any thread count",
          "[calib]") {
  const std::string dir = TempDir("profile_real");
  const std::string data = RequireShared("corpora/tinystories-calib.txt");
  const std::string args = "profile --model " + Stories() + " --data " + data + " --max-tokens 3000";
  const RunResult r1 = RunSinkquant(args + " --threads 1 --out " + dir + "/t1");
  REQUIRE(r1.exit_code == 0);
  const RunResult r2 = RunSinkquant(args + " --threads 2 --out " + dir + "/t2");
  REQUIRE(r2.exit_code == 0);
  const std::string json_text = Slurp(dir + "/t1/profile.json");
  CHECK(json_text == Slurp(dir + "/t2/profile.json"));  // thread count changes nothing

  const nlohmann::json j = nlohmann::json::parse(json_text);
  CHECK(j["schema"] == "sinkquant.profile/1");
  CHECK(j["data"]["sha256"] == sq::Sha256File(data));
  CHECK(j["data"]["window_mode"] == "documents");
  CHECK(j["model"]["rope_pairing"] == "adjacent");
  CHECK(j["thresholds"]["sink_mass"] == 0.3);
  const int layers = j["model"]["layers"], heads = j["model"]["heads"];
  CHECK(j["sites"].size() == size_t(4 * layers + 1));
  CHECK(j["sites"][0]["channel_absmax"].size() == 64);
  REQUIRE(j["attention"]["heads"].size() == size_t(layers * heads));
  // stories260K has no strong sinks: the profile must say so rather than invent them.
  for (const auto& h : j["attention"]["heads"]) {
    CHECK(h["sink"] == false);
    CHECK(h["first_mass"][0].get<double>() < 0.3);
  }
  CHECK(j["massive_activations"]["entries"].empty());
  CHECK(j["massive_activations"]["first_layer"].is_null());
  CHECK(j["residual_sinks"]["h_avg"].size() == 64);
  CHECK(j["rope"]["inv_freq"].size() == 4);
  CHECK_THAT(r1.output, Catch::Contains("attention sinks (mean attention of queries at positions >= 16"));
  CHECK_THAT(r1.output, Catch::Contains("): none"));
  CHECK_THAT(r1.output, Catch::Contains("verdict: "));

  const std::string html = Slurp(dir + "/t1/report.html");
  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("src=") == std::string::npos);   // nothing fetched: no images, no links
  CHECK(html.find("href=") == std::string::npos);
  CHECK(html.find("No sink heads") != std::string::npos);
  size_t svgs = 0;
  for (size_t p = html.find("<svg"); p != std::string::npos; p = html.find("<svg", p + 1)) ++svgs;
  CHECK(svgs >= 8);
}
