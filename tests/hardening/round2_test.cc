// Hardening, round two: one test per family of attack (parsers, resource limits, checkpoint
// consistency, non-finite values, flags, outputs, data), each on the shared mechanism that
// closes it. Every case is small: a few hundred bytes of input or one run of stories260K.
#include <catch2/catch.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "calib/dataset.h"
#include "cli/args.h"
#include "cli/output.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/input_file.h"
#include "core/model_config.h"
#include "core/tensor.h"
#include "formats/hf_config.h"
#include "formats/json_util.h"
#include "formats/safetensors.h"
#include "formats/unicode.h"
#include "formats/unicode_regex.h"
#include "onnx/writer.h"
#include "tests/cli/cli_helpers.h"
#include "tests/test_paths.h"

using namespace sq;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

const std::string& Dir() {
  static const std::string dir = test::TempDir("hardening-round2");
  return dir;
}

std::string Write(const std::string& name, const std::string& bytes) {
  return test::WriteTemp(Dir(), name, bytes);
}

Args MakeArgs(const std::vector<std::string>& argv) { return Args("test", argv); }

}  // namespace

TEST_CASE("parsers: JSON depth and duplicate keys, regex nesting, repeats and step budget",
          "[hardening][parsers]") {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  REQUIRE_THROWS_WITH(ParseJson(deep, "deep.json"), Contains("deep.json: JSON nested deeper than 64"));
  REQUIRE_NOTHROW(ParseJson(std::string(64, '[') + std::string(64, ']'), "ok.json"));
  // Brackets inside strings are text, not nesting.
  REQUIRE_NOTHROW(ParseJson("{\"a\": \"" + std::string(1000, '[') + "\"}", "str.json"));
  REQUIRE_THROWS_WITH(ParseJson(R"({"a": {"x": 1, "x": 2}})", "dup.json"),
                      Contains("dup.json: key \"x\" appears twice"));
  REQUIRE_NOTHROW(ParseJson(R"({"a": {"x": 1}, "b": {"x": 2}})", "nodup.json"));
  const std::string st = Write("dup.json", R"({"a": 1, "a": 1})");
  REQUIRE_THROWS_WITH(ReadJsonFile(st), Contains(st + ": key \"a\" appears twice"));

  REQUIRE_THROWS_WITH(UnicodeRegex(std::string(40, '(') + "a" + std::string(40, ')')),
                      Contains("nested deeper than 32"));
  REQUIRE_THROWS_WITH(UnicodeRegex("a{100000}"), Contains("repeat count above 1000"));
  REQUIRE_THROWS_WITH(UnicodeRegex("(((a{1000}){1000}){1000})"), Contains("instructions"));
  REQUIRE_THROWS_WITH(UnicodeRegex("a" + std::string(200, '?')), Contains("quantifiers stacked"));
  const UnicodeRegex bad("(a+)+b");
  const auto text = unicode::ToCodepoints(std::string(40, 'a'));
  const auto start = std::chrono::steady_clock::now();
  REQUIRE_THROWS_WITH(bad.FindAll(text), Contains("step budget"));
  // Correctness is the point here; the time bound only proves the budget ended the search.
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(30));
  const UnicodeRegex gpt2(R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)");
  const auto spaces = unicode::ToCodepoints(std::string(200000, ' ') + "x");
  REQUIRE(gpt2.FindAll(spaces).size() == 2);  // long but linear work stays inside the budget
}

TEST_CASE("resource limits: FIFOs, folders and devices are refused before reading",
          "[hardening][limits]") {
  const std::string fifo = Dir() + "/fifo.json";
  fs::remove(fifo);
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  REQUIRE_THROWS_WITH(ReadJsonFile(fifo), Contains(fifo + ": is a FIFO, not a regular file"));
  REQUIRE_THROWS_WITH(ReadTextFile(fifo), Contains("a FIFO"));
  REQUIRE_THROWS_WITH(ReadJsonFile(Dir()), Contains("a folder"));
  REQUIRE_THROWS_WITH(ReadTextFile("/dev/zero"), Contains("/dev/zero: is a device"));
  const std::string small = Write("small.txt", std::string(100, 'x'));
  REQUIRE_THROWS_WITH(ReadInputFile(small, 10), Contains("over the 10-byte limit"));
  auto r = test::RunSinkquant("tokenize --tokenizer " + fifo);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Contains("is a FIFO"));
  Args threads = MakeArgs({"--threads", "100000"});
  REQUIRE_THROWS_WITH(ThreadsFlag(threads), Contains("--threads must be between 0 and 1024"));
}

TEST_CASE("checkpoint consistency: config numbers, rope_scaling precedence, tied head",
          "[hardening][checkpoint]") {
  nlohmann::json c = {{"architectures", {"LlamaForCausalLM"}}, {"hidden_size", 64},
                      {"intermediate_size", 172}, {"num_hidden_layers", 2},
                      {"num_attention_heads", 8}, {"vocab_size", 512}};
  REQUIRE_NOTHROW(HfConfigFromJson(c, "c.json"));
  auto with = [&](const char* key, nlohmann::json v) {
    nlohmann::json d = c;
    d[key] = std::move(v);
    return d;
  };
  REQUIRE_THROWS_WITH(HfConfigFromJson(with("rms_norm_eps", 1e300), "c.json"),
                      Contains("c.json: rms_norm_eps 1e+300 is not a finite float"));
  REQUIRE_THROWS_WITH(HfConfigFromJson(with("rms_norm_eps", 1e-60), "c.json"),
                      Contains("underflows to 0"));
  REQUIRE_THROWS_WITH(HfConfigFromJson(with("rope_theta", -5), "c.json"), Contains("rope_theta"));
  REQUIRE_THROWS_WITH(HfConfigFromJson(with("head_dim", 1 << 20), "c.json"),
                      Contains("implausibly large"));
  REQUIRE_THROWS_WITH(HfConfigFromJson(with("eos_token_id", 512), "c.json"),
                      Contains("c.json: eos_token_id 512 is outside the vocab (512)"));
  // Hugging Face reads rope_type before the legacy type.
  const auto rope = with("rope_scaling", {{"rope_type", "default"}, {"type", "dynamic"}});
  CHECK_FALSE(HfConfigFromJson(rope, "c.json").rope_scaling.enabled);
  const auto rope2 = with("rope_scaling", {{"rope_type", "dynamic"}, {"type", "default"}});
  REQUIRE_THROWS_WITH(HfConfigFromJson(rope2, "c.json"), Contains("type 'dynamic'"));

  // A converted stories260K with tie_word_embeddings and a differing stored lm_head.
  const std::string model = test::RequireShared("models/stories260K/stories260K.bin");
  const std::string tok = test::RequireShared("models/stories260K/tok512.bin");
  const std::string hf = Dir() + "/hf";
  fs::remove_all(hf);
  REQUIRE(test::RunSinkquant("convert --model " + model + " --tokenizer " + tok + " --out " + hf)
              .exit_code == 0);
  REQUIRE(ReadJsonFile(hf + "/config.json")["tie_word_embeddings"] == true);
  {  // store an lm_head.weight of zeros beside the (tied) embedding
    const SafetensorsFile st = OpenSafetensors(hf + "/model.safetensors");
    std::vector<std::pair<std::string, TensorView>> tensors(st.tensors.begin(), st.tensors.end());
    const auto head = MakeOwned(Mat::Zero(512, 64), {512, 64});
    tensors.emplace_back("lm_head.weight", head->View());
    WriteSafetensors(hf + "/model.safetensors", tensors, {});
  }
  auto r = test::RunSinkquant("generate --model " + hf + " --steps 1");
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Contains("lm_head.weight differs from model.embed_tokens.weight"));
}

TEST_CASE("non-finite values: an overflowed perplexity is \"inf\" in JSON, NaN an error",
          "[hardening][nonfinite]") {
  const nlohmann::json j = {{"ppl", HUGE_VAL}, {"nll", 800.0}, {"rows", {{{"d", -HUGE_VAL}}}}};
  const std::string text = ReportJson(j);
  CHECK_THAT(text, Contains("\"ppl\": \"inf\""));
  CHECK_THAT(text, Contains("\"d\": \"-inf\""));
  CHECK_THAT(text, !Contains("null"));
  REQUIRE_THROWS_WITH(ReportJson({{"x", {{"ratio", std::nan("")}}}}),
                      Contains("report value .x.ratio is NaN"));

  // A NaN in a float norm weight (never quantized) of stories260K: byte 28 + 512*64*4.
  const std::string model = test::RequireShared("models/stories260K/stories260K.bin");
  const std::string tok = test::RequireShared("models/stories260K/tok512.bin");
  const std::string bad = Dir() + "/nan_norm.bin";
  fs::copy_file(model, bad, fs::copy_options::overwrite_existing);
  {
    std::fstream f(bad, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(131100);
    const float nan = std::nanf("");
    f.write(reinterpret_cast<const char*>(&nan), 4);
  }
  auto r = test::RunSinkquant("quantize --model " + bad + " --tokenizer " + tok + " --out " +
                              Dir() + "/nan.onnx");
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Contains("layer 0 attn_norm [64] has nan at [0]"));
  CHECK_FALSE(fs::exists(Dir() + "/nan.onnx"));
  r = test::RunSinkquant("generate --model " + bad + " --tokenizer " + tok + " --steps 2");
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Contains("NaN or Inf in the logits"));
}

TEST_CASE("flags: one table validates syntax, finiteness and range with the flag's name",
          "[hardening][flags]") {
  auto int_flag = [](const std::string& v) {
    Args a = MakeArgs({"--ctx", v});
    return CtxFlag(a);
  };
  REQUIRE(int_flag("128") == 128);
  for (const char* bad : {"4x", "1e3", "0x10", " 5", "", "99999999999999999999"}) {
    INFO(bad);
    REQUIRE_THROWS_WITH(int_flag(bad), Contains("flag --ctx expects an integer"));
  }
  REQUIRE_THROWS_WITH(int_flag("-3"), Contains("--ctx must be between 0 and"));
  Args f = MakeArgs({"--alpha", "nan"});
  REQUIRE_THROWS_WITH(f.Float("alpha", 0.5, 0, 1), Contains("--alpha expects a finite number"));
  Args g = MakeArgs({"--alpha", "2"});
  REQUIRE_THROWS_WITH(g.Float("alpha", 0.5, 0, 1), Contains("--alpha must be between 0 and 1"));
  Args b = MakeArgs({"--w-bits", "32"});
  REQUIRE_THROWS_WITH(b.IntOneOf("w-bits", 16, {2, 3, 4, 5, 6, 7, 8, 16}),
                      Contains("--w-bits must be one of 2, 3, 4, 5, 6, 7, 8, 16, got 32"));
  const std::vector<std::pair<std::string, int>> formats = {{"qdq", 1}, {"matmulnbits", 2}};
  Args named = MakeArgs({"--onnx-format", "matmulnbits"});
  CHECK(named.OneOf("onnx-format", "qdq", formats) == 2);
  Args absent = MakeArgs({});
  CHECK(absent.OneOf("onnx-format", "qdq", formats) == 1);
  Args unknown = MakeArgs({"--onnx-format", "QDQ"});
  REQUIRE_THROWS_WITH(unknown.OneOf("onnx-format", "qdq", formats),
                      Contains("--onnx-format must be one of qdq, matmulnbits, got 'QDQ'"));
  auto r = test::RunSinkquant("profile --model x --data y --out z --sink-mass 7");
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Contains("--sink-mass must be between 0 and 1"));
}

TEST_CASE("flags: an output file's folder is checked when the flags are read", "[hardening][flags]") {
  Args ok = MakeArgs({"--json", Dir() + "/out.json"});
  CHECK(ok.OutputFile("json") == Dir() + "/out.json");
  Args bare = MakeArgs({"--json", "out.json"});  // the working folder
  CHECK(bare.OutputFile("json") == "out.json");
  Args none = MakeArgs({});
  CHECK(none.OutputFile("json").empty());
  REQUIRE_THROWS_WITH(none.OutputFile("out", true), Contains("missing required flag --out"));
  Args missing = MakeArgs({"--logits-out", Dir() + "/no_such_dir/r.json"});
  REQUIRE_THROWS_WITH(missing.OutputFile("logits-out"),
                      Contains("--logits-out " + Dir() + "/no_such_dir/r.json: folder " + Dir() +
                               "/no_such_dir does not exist"));
  const std::string file = Write("plain.txt", "x");  // a file where the folder should be
  Args under_file = MakeArgs({"--json", file + "/out.json"});
  REQUIRE_THROWS_WITH(under_file.OutputFile("json"), Contains("does not exist"));
}

TEST_CASE("outputs: inputs are never overwritten, special outputs never replaced, stdout errors",
          "[hardening][outputs]") {
  const TrackInputs track;
  const std::string in = Write("input.txt", "hello\n");
  REQUIRE(ReadInputFile(in) == "hello\n");
  const std::string link = Dir() + "/link.txt", hard = Dir() + "/hard.txt";
  fs::remove(link);
  fs::remove(hard);
  fs::create_symlink(in, link);
  fs::create_hard_link(in, hard);
  REQUIRE_THROWS_WITH(WriteFileAtomic(hard, "x"), Contains("same file as the input"));
  REQUIRE_THROWS_WITH(WriteFileAtomic(Dir() + "/./hard.txt", "x"), Contains("same file as the input"));
  REQUIRE_THROWS_WITH(WriteFileAtomic(link, "x"), Contains("is a symlink: refusing to replace it"));
  REQUIRE_THROWS_WITH(WriteFileAtomic("/dev/null", "x"), Contains("is a device"));
  CHECK(test::ReadBytes(in) == "hello\n");
  // Several outputs: none is written when one of them cannot be.
  const std::string a = Dir() + "/a.json";
  fs::remove(a);
  REQUIRE_THROWS(WriteFilesAtomic({{a, "{}"}, {Dir() + "/missing/b.md", "x"}}));
  CHECK_FALSE(fs::exists(a));

  // An ONNX model with external data whose output path is refused leaves neither file.
  const std::string onnx = Dir() + "/m.onnx";
  fs::remove(onnx + ".data");
  fs::remove(onnx);
  fs::create_symlink(in, onnx);
  {
    OnnxBuilder b(onnx, {.external_threshold = 64});
    b.AddInput("x", OnnxType::kFloat, {int64_t{100}});
    b.Float("big", {100}, std::vector<float>(100, 1.0f));
    b.Node("Add", {"x", "big"}, {}, "y");
    b.AddOutput("y", OnnxType::kFloat, {int64_t{100}});
    REQUIRE_THROWS_WITH(b.Save(), Contains("is a symlink: refusing to replace it"));
  }
  CHECK_FALSE(fs::exists(onnx + ".data"));
  CHECK(fs::is_symlink(onnx));

  const std::string model = test::RequireShared("models/stories260K/stories260K.bin");
  const std::string tok = test::RequireShared("models/stories260K/tok512.bin");
  const std::string err = Dir() + "/stderr.txt";
  const int status = std::system((test::Binary() + " generate --model " + model + " --tokenizer " +
                                  tok + " --steps 4 >/dev/full 2>" + err).c_str());
  CHECK(WEXITSTATUS(status) == 1);
  CHECK_THAT(test::ReadBytes(err), Contains("writing to stdout failed: No space left on device"));
  test::RunResult r;
  // convert --force must not delete a folder holding its input.
  const std::string holder = Dir() + "/holder";
  fs::create_directories(holder);
  fs::copy_file(model, holder + "/m.bin", fs::copy_options::overwrite_existing);
  r = test::RunSinkquant("convert --model " + holder + "/m.bin --tokenizer " + tok + " --out " +
                         Dir() + "/./holder --force");
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Contains("holds the input"));
  CHECK(fs::exists(holder + "/m.bin"));
}

TEST_CASE("data: CR-only line ends split documents, --calib and --data the same file",
          "[hardening][data]") {
  const auto docs = SplitDocuments("one\r<|endoftext|>\rtwo\r");
  REQUIRE(docs.size() == 2);
  CHECK(docs[0] == "one");
  CHECK(docs[1] == "two");
  const std::string d = Write("data.txt", "text\n");
  const std::string alias = Dir() + "/alias.txt";
  fs::remove(alias);
  fs::create_symlink(d, alias);
  REQUIRE_THROWS_WITH(CheckCalibIsNotData(alias, Dir() + "/./data.txt"),
                      Contains("are the same file"));
  REQUIRE_NOTHROW(CheckCalibIsNotData("", d));
}
