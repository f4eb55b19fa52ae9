// ONNX export checked in a real ONNX Runtime: the exported graph runs in onnxruntime-node
// (scripts/onnx/verify.mjs) on windows whose logits sinkquant wrote, and must reproduce them.
#include "onnx/export.h"

#include <onnx/onnx_pb.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "formats/hf_config.h"
#include "model/loader.h"
#include "model/model.h"
#include "model/random_weights.h"
#include "onnx/export_folder.h"
#include "onnx/writer.h"
#include "quant/kv_quant.h"
#include "quant/norm_fold.h"
#include "quant/online_rotation.h"
#include "quant/quantize_model.h"
#include "quant/rotate.h"
#include "tests/model/arch_cases.h"
#include "tests/test_paths.h"
#include "tests/test_util.h"

using namespace sq;
namespace fs = std::filesystem;

namespace {

// Float graphs: the same ops in a different summation order (Eigen vs MLAS) give logits that
// differ by ~1e-6 relative; perplexity agrees far inside the issue's 1e-4.
constexpr double kFloatPplRtol = 1e-4;
constexpr double kFloatLogitTol = 1e-3;
// Fake-quantized graphs: a float difference of one ulp can flip one activation's rounding,
// which moves a few logits by a quantization step; the perplexity stays within 1e-3 (the
// issue's bound).
constexpr double kQuantPplRtol = 1e-3;
// ORT and sinkquant sum in different orders (MLAS vs Eigen, MLAS's own exp in Softmax), and
// a 4-bit rounding flip spreads through the rest of its window by attention. On a trained model
// the cascades average out (bytelm-austen, whole Emma tail: 2e-5 to 3.7e-4, measured), but
// stories260K at W4A4 is so noisy (KL 0.5 from float) that one cascade is a different sample
// of its quantization noise: over its whole validation text the two perplexities differed by
// 3e-4 to 1.5e-3 across recipes. That model is checked against this bound, and to float
// precision on the tokens before each window's first flip.
constexpr double kChaosPplRtol = 5e-3;
// Cached decoding against whole-window runs, padded batches against each prompt alone: the
// same graph in ONNX Runtime on the same numbers, summed in another order.
using test::kLogitTolerance;
const std::string kTolFlag = " --tol " + std::to_string(kLogitTolerance) + " ";

struct Run {
  int status = -1;
  std::string output;
};

// Runs a shell command, capturing stdout and stderr.
Run Shell(const std::string& cmd) {
  Run r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  REQUIRE(p != nullptr);
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::string VerifyScript() {
  const std::string dir = std::string(SINKQUANT_SOURCE_DIR) + "/scripts/onnx";
  if (!fs::exists(dir + "/node_modules/onnxruntime-node")) {
    FAIL("onnxruntime-node is not installed in " << dir
                                                  << " (run scripts/setup.sh, or npm ci "
                                                     "--ignore-scripts there)");
  }
  return dir + "/verify.mjs";
}

// Runs the verifier and returns its JSON result; the run must exit `want_status`.
nlohmann::json Verify(const std::string& model, const std::string& ref, double ppl_rtol,
                      double max_logit_diff, int want_status = 0) {
  const std::string out = model + ".verify.json";
  char tol[128];
  std::snprintf(tol, sizeof(tol), " --ppl-rtol %g --max-logit-diff %g", ppl_rtol, max_logit_diff);
  // One ORT thread: CTest runs tests side by side, and the models here are small.
  const Run r = Shell("node " + VerifyScript() + " --model " + model + " --ref " + ref + tol +
                      " --threads 1 --json " + out);
  INFO(r.output);
  REQUIRE(r.status == want_status);
  std::ifstream in(out);
  return nlohmann::json::parse(in);
}

// `n` windows of random ids, the first `T` tokens long and each next one 3 shorter (so the
// graph sees several lengths).
std::vector<Window> ShrinkingWindows(int n, int T, int vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> id(0, vocab - 1);
  std::vector<Window> ws(n);
  for (Window& w : ws) {
    w.tokens.resize(T);
    for (int& t : w.tokens) t = id(rng);
    T -= 3;  // windows of different lengths
  }
  return ws;
}

// A small model with every feature the engine has.
ModelConfig FullConfig(RopePairing pairing) {
  ModelConfig c =
      test::SmallConfig({.hidden = 64, .intermediate = 96, .n_layers = 2, .n_heads = 4,
                         .n_kv_heads = 2, .head_dim = 16, .vocab = 97, .max_position = 64});
  c.rope_pairing = pairing;
  c.rope_scaling = {.enabled = true, .factor = 8.0f, .low_freq_factor = 1.0f,
                    .high_freq_factor = 4.0f, .original_max_position = 16};
  c.tie_embeddings = true;
  c.qkv_bias = true;
  c.qk_norm = true;
  c.attn_output_gate = true;
  c.gated_norm_rank = 4;
  ValidateConfig(c, "test");
  return c;
}

ModelConfig PlainConfig() {
  const ModelConfig c =
      test::SmallConfig({.hidden = 64, .intermediate = 128, .n_layers = 2, .n_heads = 4,
                         .n_kv_heads = 4, .head_dim = 16, .vocab = 101, .max_position = 64});
  ValidateConfig(c, "test");
  return c;
}

nlohmann::json Generate(const std::string& model, const std::string& args, int want_status = 0);

// Exports `m`, writes sinkquant's logits for random windows, and runs the verifier. With
// `check_cache`, also decodes with the KV cache (generate.mjs): every cached step equals the
// whole window's run, and a padded batch of three prompts equals each prompt alone.
nlohmann::json ExportAndVerify(const Model& m, const std::string& name, const OnnxExportOptions& o,
                               double ppl_rtol, double max_logit_diff, bool check_cache = false) {
  const std::string dir = test::TempDir("onnx_" + name);
  const std::string model = dir + "/model.onnx", ref = dir + "/ref.json";
  ExportOnnx(m, model, o);
  WriteReferenceLogits(m, ShrinkingWindows(3, 24, m.config.vocab, 7), ref);
  if (check_cache) {
    const auto g = Generate(model, " --prompt-ids 3,14,15,92,65 --max-new-tokens 12 "
                                   "--check-full-window" + kTolFlag +
                                   "--batch '5,8,13,21,34,55,89;2,7;1,8,28,18' --batch-steps 4");
    INFO(g.dump(2));
    CHECK(g["full_window"]["max_abs_logit_diff"].get<double>() <= kLogitTolerance);
    CHECK(g["batch"]["max_abs_logit_diff"].get<double>() <= kLogitTolerance);
  }
  return Verify(model, ref, ppl_rtol, max_logit_diff);
}

onnx::ModelProto ReadModel(const std::string& path) {
  onnx::ModelProto p;
  std::ifstream in(path, std::ios::binary);
  REQUIRE(p.ParseFromIstream(&in));
  return p;
}

}  // namespace

TEST_CASE("PackNibbles puts element 0 in the low nibble and pads odd counts", "[quant][onnx]") {
  const std::vector<uint8_t> v = {1, 2, 15, 0, 7};
  CHECK(PackNibbles(v) == std::string("\x21\x0f\x07", 3));
  const std::vector<uint8_t> neg = {static_cast<uint8_t>(int8_t{-8}), static_cast<uint8_t>(int8_t{-1})};
  CHECK(PackNibbles(neg) == std::string("\xf8", 1));  // -8 -> 0x8 low, -1 -> 0xf high
}

TEST_CASE("OnnxBuilder writes large tensors to the external data file", "[quant][onnx]") {
  const std::string dir = test::TempDir("onnx_writer");
  const std::string path = dir + "/m.onnx";
  std::vector<float> big(1000), small(4, 2.0f);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<float>(i);
  {
    OnnxBuilder b(path, {.external_threshold = 64});
    b.AddInput("x", OnnxType::kFloat, {int64_t{1000}});
    b.Float("big", {1000}, big);
    b.Float("small", {4}, small);
    b.Int4("codes", {3}, std::vector<int8_t>{-8, 7, -1});
    b.Node("Add", {"x", "big"}, {}, "y");
    b.AddOutput("y", OnnxType::kFloat, {int64_t{1000}});
    const OnnxFileSizes s = b.Save();
    CHECK(s.data_path == path + ".data");
    CHECK(s.data_bytes == 4000);
    CHECK(s.model_bytes == fs::file_size(path));
  }
  const onnx::ModelProto p = ReadModel(path);
  CHECK(p.ir_version() == 10);
  REQUIRE(p.graph().initializer_size() == 3);
  const onnx::TensorProto& big_t = p.graph().initializer(0);
  CHECK(big_t.data_location() == onnx::TensorProto::EXTERNAL);
  CHECK(big_t.raw_data().empty());
  std::map<std::string, std::string> ext;
  for (const auto& e : big_t.external_data()) ext[e.key()] = e.value();
  CHECK(ext["location"] == "m.onnx.data");
  CHECK(ext["length"] == "4000");
  std::ifstream data(path + ".data", std::ios::binary);
  data.seekg(std::stoll(ext["offset"]));
  std::vector<float> back(1000);
  data.read(reinterpret_cast<char*>(back.data()), 4000);
  CHECK(back == big);
  CHECK(p.graph().initializer(1).raw_data().size() == 16);  // under the threshold: inline
  CHECK(p.graph().initializer(2).data_type() == 22);
  CHECK(p.graph().initializer(2).raw_data() == std::string("\x78\x0f", 2));
  // Nothing else is left in the folder (no temporary files).
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir)) files += e.is_regular_file();
  CHECK(files == 2);
}

TEST_CASE("An OnnxBuilder destroyed before Save leaves no file behind", "[quant][onnx]") {
  const std::string dir = test::TempDir("onnx_writer_abort");
  std::vector<float> big(1000, 1.0f);
  {
    OnnxBuilder b(dir + "/m.onnx", {.external_threshold = 64});
    b.Float("big", {1000}, big);
    CHECK(!fs::is_empty(dir));  // the external data streams to a temporary file
  }
  CHECK(fs::is_empty(dir));
}

TEST_CASE("OnnxBuilder rejects duplicate names and out-of-range int4", "[quant][onnx]") {
  OnnxBuilder b(test::TempDir("onnx_writer_bad") + "/m.onnx");
  b.Float("w", {1}, std::vector<float>{1.0f});
  CHECK_THROWS_WITH(b.Float("w", {1}, std::vector<float>{1.0f}),
                    Catch::Contains("duplicate tensor name w"));
  CHECK_THROWS_WITH(b.Int4("q", {1}, std::vector<int8_t>{8}), Catch::Contains("outside [-8, 7]"));
}

TEST_CASE("Float export of a model with every feature runs identically in ONNX Runtime",
          "[quant][onnx]") {
  for (RopePairing pairing : {RopePairing::kHalf, RopePairing::kAdjacent}) {
    const ModelConfig c = FullConfig(pairing);
    const Model m = BuildDenseModel(c, RandomWeights(c, 11));
    const auto r = ExportAndVerify(m, pairing == RopePairing::kHalf ? "full_half" : "full_adj",
                                   {}, kFloatPplRtol, kFloatLogitTol, /*check_cache=*/true);
    CHECK(r["ppl_rel_diff"].get<double>() < kFloatPplRtol);
    CHECK(r["argmax_agreement"].get<double>() == 1.0);
  }
}

TEST_CASE("Sliding-window, partial-rotary and NoPE exports run identically in ONNX Runtime",
          "[quant][onnx][arch]") {
  // Windows of 24, 21 and 18 tokens and 17-token cached decodes, all longer than the windows
  // (4-7): the mask binds in the scoring graph, in the decoder and across its cache.
  // (phi4mini_partial and smollm3_nope add no graph feature beyond these four.)
  for (const test::ArchCase& a : test::ArchCases()) {
    if (a.name == "phi4mini_partial" || a.name == "smollm3_nope") continue;
    if (a.gemma != 0) continue;  // the Gemma test below, with random norm weights
    SECTION(a.name) {
      const ModelConfig c = HfConfigFromJson(a.config, a.name);
      const Model m = BuildDenseModel(c, RandomWeights(c, 13));
      const auto r = ExportAndVerify(m, "arch_" + a.name, {}, kFloatPplRtol, kFloatLogitTol,
                                     /*check_cache=*/true);
      INFO(r.dump(2));
      CHECK(r["ppl_rel_diff"].get<double>() < kFloatPplRtol);
      CHECK(r["argmax_agreement"].get<double>() == 1.0);
    }
  }
}

namespace {

Model QuantizedRandom(const ModelConfig& c, QuantConfig q) {
  const Model fp = BuildDenseModel(c, RandomWeights(c, 5));
  return QuantizeModel(fp, q, {});
}

QuantConfig W4A4(int group, bool sym, int kv_bits) {
  QuantConfig q;
  q.w_bits = 4;
  q.w_group = group;
  q.w_sym = sym;
  q.a_bits = 4;
  q.kv_bits = kv_bits;
  return q;
}

}  // namespace

TEST_CASE("Gemma 2 and Gemma 3 exports (float, rotated, W4A4) run identically in ONNX Runtime",
          "[quant][onnx][arch][gemma]") {
  // Every Gemma feature binds in these configs (arch_cases.h): embedding scale, post-norms with
  // random weights, GeGLU, query_pre_attn_scalar, both soft-caps (Gemma 2), sliding windows of
  // 5-6 against 18-24 tokens, local and linearly scaled global RoPE and q/k norms (Gemma 3).
  // Gemma 2's final cap squeezes random logits into ties, so the logits are compared, not argmax.
  for (const test::ArchCase& a : test::ArchCases()) {
    if (a.gemma == 0) continue;
    SECTION(a.name) {
      const Model fp = test::RandomNormsModel(HfConfigFromJson(a.config, a.name));
      const auto f = ExportAndVerify(fp, a.name + "_float", {}, kFloatPplRtol, kLogitTolerance,
                                     /*check_cache=*/true);
      INFO(f.dump(2));
      CHECK(f["ppl_rel_diff"].get<double>() < kFloatPplRtol);
      OnnxExportOptions scoring;  // the other layout slices its own RoPE tables
      scoring.layout = OnnxLayout::kScoring;
      const auto sc =
          ExportAndVerify(fp, a.name + "_scoring", scoring, kFloatPplRtol, kLogitTolerance);
      CHECK(sc["ppl_rel_diff"].get<double>() < kFloatPplRtol);
      // Rotated: Q folds into q/k/v, gate/up, embedding and lm_head, and runs online after each
      // post-norm (LayerLinears::post_out).
      const Model rot = BuildModel(RotateHadamard(FoldNorms(Untransformed(fp)), {.seed = 3}));
      REQUIRE(rot.linears[0].post_out);
      const auto r = ExportAndVerify(rot, a.name + "_rotated", {}, kFloatPplRtol, kLogitTolerance);
      INFO(r.dump(2));
      CHECK(r["ppl_rel_diff"].get<double>() < kFloatPplRtol);
      OnnxExportOptions o;
      o.format = a.gemma == 2 ? OnnxFormat::kQdq : OnnxFormat::kMatMulNBits;
      const auto q = ExportAndVerify(QuantizeModel(rot, W4A4(16, true, 16), {}), a.name + "_w4a4",
                                     o, kQuantPplRtol, 1e30);
      INFO(q.dump(2));
      CHECK(q["ppl_rel_diff"].get<double>() < kQuantPplRtol);
    }
  }
}

TEST_CASE("W4A4 RTN exports (QDQ and MatMulNBits) reproduce sinkquant's simulation",
          "[quant][onnx]") {
  struct Case {
    const char* name;
    QuantConfig q;
    OnnxFormat format;
  };
  QuantConfig w8 = W4A4(0, true, 16);
  w8.w_bits = 8;
  w8.a_bits = 8;
  QuantConfig mixed = W4A4(16, true, 16);  // layer 1 at W8A8 (per-channel int8), the rest W4A4
  mixed.alt_layers = {1};
  const std::vector<Case> cases = {
      {"qdq_g16_sym_kv4", W4A4(16, true, 4), OnnxFormat::kQdq},
      {"qdq_channel_asym", W4A4(0, false, 16), OnnxFormat::kQdq},
      {"qdq_w8a8", w8, OnnxFormat::kQdq},
      {"qdq_mixed_w8a8_layer1", mixed, OnnxFormat::kQdq},
      {"nbits_g16_sym_kv4", W4A4(16, true, 4), OnnxFormat::kMatMulNBits},
      {"nbits_g32_asym", W4A4(32, false, 16), OnnxFormat::kMatMulNBits},
      {"nbits_channel_sym", W4A4(0, true, 8), OnnxFormat::kMatMulNBits},
  };
  for (const Case& k : cases) {
    SECTION(k.name) {
      const Model m = QuantizedRandom(FullConfig(RopePairing::kHalf), k.q);
      OnnxExportOptions o;
      o.format = k.format;
      const bool kv4 = k.q.kv_bits == 4;  // the cache holds KV-quantized keys and values
      const auto r = ExportAndVerify(m, k.name, o, kQuantPplRtol, 1e30, kv4);
      INFO(r.dump(2));
      CHECK(r["ppl_rel_diff"].get<double>() < kQuantPplRtol);
      CHECK(r["argmax_agreement"].get<double>() > 0.95);
    }
  }
}

TEST_CASE("Online Hadamard rotations export as two small products before the quantized linear",
          "[quant][onnx]") {
  const ModelConfig c = FullConfig(RopePairing::kAdjacent);
  Model fp = BuildDenseModel(c, RandomWeights(c, 9));
  OnlineRotations rot;
  for (int l = 0; l < c.n_layers; ++l) {
    LayerOnlineRotations r;
    r.o_in = std::make_shared<Rotation>(c.q_dim(), 100 + l);          // Hadamard 64
    r.down_in = std::make_shared<Rotation>(c.intermediate, 200 + l);  // 96 = 8 x Paley 12
    r.attn_in = std::make_shared<Rotation>(c.hidden, 300 + l);        // shared by q/k/v
    rot.layers.push_back(r);
  }
  WrapOnlineRotations(fp, rot);
  for (OnnxFormat f : {OnnxFormat::kQdq, OnnxFormat::kMatMulNBits}) {
    const Model m = QuantizeModel(fp, W4A4(16, true, 16), {});
    OnnxExportOptions o;
    o.format = f;
    const auto r = ExportAndVerify(m, f == OnnxFormat::kQdq ? "rot_qdq" : "rot_nbits", o,
                                   kChaosPplRtol, 1e30);
    INFO(r.dump(2));
    CHECK(r["prefix_ppl_rel_diff"].get<double>() < kFloatPplRtol);
    CHECK(r["prefix_fraction"].get<double>() > 0.5);
  }
  // The float model with rotations: exact up to float rounding.
  const auto r = ExportAndVerify(fp, "rot_float", {}, kFloatPplRtol, kFloatLogitTol);
  CHECK(r["ppl_rel_diff"].get<double>() < kFloatPplRtol);
  // Every rotation here is a Hadamard: written as its Kronecker factors (96 = 8 x 12: left 8,
  // right 12), never as an n x n constant.
  const std::string graph = test::TempDir("onnx_rot_graph") + "/model.onnx";
  ExportOnnx(fp, graph);
  int factors = 0;
  const onnx::ModelProto proto = ReadModel(graph);
  for (const auto& t : proto.graph().initializer()) {
    CHECK(t.name().find("online_rotation") == std::string::npos);
    if (t.name().find("online_hadamard") == std::string::npos || t.dims_size() != 2) continue;
    ++factors;
    CHECK(t.dims(0) <= 16);
  }
  CHECK(factors == 2 * 3 * c.n_layers);  // left and right of o, down and attention inputs
}

TEST_CASE("kv-rotate exports its query/key rotation before the KV4 cache", "[quant][onnx]") {
  const ModelConfig c = FullConfig(RopePairing::kHalf);  // GQA, q/k norm, gated attention
  const Model fp =
      BuildModel(RotateKvCache(Untransformed(BuildDenseModel(c, RandomWeights(c, 13))), 0));
  // Float: exact up to float rounding, decoding from the cache included.
  const auto f = ExportAndVerify(fp, "kvrot_float", {}, kFloatPplRtol, kFloatLogitTol,
                                 /*check_cache=*/true);
  CHECK(f["ppl_rel_diff"].get<double>() < kFloatPplRtol);
  CHECK(f["argmax_agreement"].get<double>() == 1.0);
  const std::string graph = test::TempDir("onnx_kvrot_graph") + "/model.onnx";
  ExportOnnx(fp, graph);
  // Every layer rotates queries and keys, and (gated attention) rotates the values back.
  int rotations = 0, back = 0;
  const onnx::ModelProto proto = ReadModel(graph);
  for (const auto& n : proto.graph().node()) {
    rotations += n.name().find("_rotate/rotate") != std::string::npos;
    back += n.name().find("v_unrotate") != std::string::npos;
  }
  CHECK(rotations == 2 * c.n_layers);
  CHECK(back == c.n_layers);
  for (OnnxFormat format : {OnnxFormat::kQdq, OnnxFormat::kMatMulNBits}) {
    const Model m = QuantizeModel(fp, W4A4(16, true, 4), {});
    OnnxExportOptions o;
    o.format = format;
    const auto r = ExportAndVerify(m, format == OnnxFormat::kQdq ? "kvrot_qdq" : "kvrot_nbits", o,
                                   kQuantPplRtol, 1e30);
    INFO(r.dump(2));
    CHECK(r["ppl_rel_diff"].get<double>() < kQuantPplRtol);
    CHECK(r["argmax_agreement"].get<double>() > 0.95);
  }
}

TEST_CASE("The verifier fails when the ONNX model computes something else", "[quant][onnx]") {
  const ModelConfig c = PlainConfig();
  const std::string dir = test::TempDir("onnx_mismatch");
  ExportOnnx(BuildDenseModel(c, RandomWeights(c, 1)), dir + "/model.onnx");
  // Reference logits from the same model quantized to W4A4: ORT runs the float graph.
  WriteReferenceLogits(QuantizedRandom(c, W4A4(16, true, 16)), ShrinkingWindows(2, 20, c.vocab, 3),
                       dir + "/ref.json");
  const auto r = Verify(dir + "/model.onnx", dir + "/ref.json", kQuantPplRtol, 1e30, 1);
  CHECK(r["max_abs_logit_diff"].get<double>() > 0.01);
}

// ---- the real binary on real checkpoints (what CI runs through CTest) ---------------------
// Whole evaluation texts: a W4A4 perplexity comparison is only as steady as its token count.

namespace {

struct Stories {
  std::string model = test::RequireShared("models/stories260K/stories260K.bin");
  std::string tok = test::RequireShared("models/stories260K/tok512.bin");
  std::string valid = test::RequireShared("corpora/tinystories-valid.txt");
  std::string calib = test::RequireShared("corpora/tinystories-calib.txt");
  std::string Common() const { return " --model " + model + " --tokenizer " + tok; }
};

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

// One OpenMP thread: CTest runs tests side by side on few cores, and two processes with two
// threads each on two cores ran the stories260K quantize 12x slower (73 s against 6 s).
Run Sinkquant(const std::string& args) {
  const Run r = Shell("OMP_NUM_THREADS=1 " + test::Binary() + " " + args);
  INFO(args << "\n" << r.output);
  REQUIRE(r.status == 0);
  return r;
}

// `sinkquant quantize <args> --out` in QDQ and MatMulNBits form with reference logits on
// `data` (the whole text), each checked in ORT: the verifier's JSON per format.
// `min_prefix`: the fraction of tokens before a window's first rounding flip. 8-bit activation
// codes flip about 18x more often than 4-bit ones at the same float noise (W8A8 rtn: 15% of 3000
// stories tokens before a flip), so a recipe with 8-bit activations asks less.
std::vector<nlohmann::json> ExportBothFormats(const std::string& args, const std::string& data,
                                              const std::string& dir, double ppl_rtol,
                                              double min_prefix = 0.4) {
  std::vector<nlohmann::json> out;
  for (const std::string format : {"qdq", "matmulnbits"}) {
    const std::string model = dir + "/" + format + ".onnx", ref = dir + "/" + format + ".json";
    const Run q = Sinkquant("quantize" + args + " --onnx-format " + format + " --out " + model +
                            " --logits-out " + ref + " --data " + data);
    CHECK_THAT(q.output, Catch::Contains("with integer weights, 1 float"));
    out.push_back(Verify(model, ref, ppl_rtol, 1e30));
    INFO(format << ": " << out.back().dump(2));
    // Until a window's first rounding flip, ORT reproduces sinkquant to float precision.
    CHECK(out.back()["prefix_ppl_rel_diff"].get<double>() < kFloatPplRtol);
    CHECK(out.back()["prefix_fraction"].get<double>() > min_prefix);
  }
  // QDQ and MatMulNBits dequantize to the same float weights.
  CHECK(out[0]["ppl_onnxruntime"].get<double>() ==
        Approx(out[1]["ppl_onnxruntime"].get<double>()).epsilon(1e-6));
  return out;
}

// stories260K W4A4 (g32) by `method`: sinkquant eval's simulated perplexity, then both exports.
void CheckStoriesW4A4(const std::string& method, double min_prefix = 0.4) {
  const Stories s;
  const std::string dir = test::TempDir("onnx_stories_" + method);
  const std::string args = s.Common() + " --method " + method +
                           " --w-bits 4 --a-bits 4 --w-group 32 --calib " + s.calib +
                           " --calib-tokens 2000";
  Sinkquant("eval" + args + " --data " + s.valid + " --sqnr-windows 0 --json " + dir +
            "/eval.json");
  const double sim_ppl = ReadJson(dir + "/eval.json")["quant"]["ppl"].get<double>();
  for (const auto& v : ExportBothFormats(args, s.valid, dir, kChaosPplRtol, min_prefix)) {
    INFO(method << ": simulated " << sim_ppl << "\n" << v.dump(2));
    // The exported model is the simulated one: the logits file holds the perplexity
    // `sinkquant eval` reports for the recipe.
    CHECK(v["ppl_sinkquant"].get<double>() == Approx(sim_ppl).epsilon(1e-12));
    CHECK(v["ppl_rel_diff"].get<double>() < kChaosPplRtol);
  }
}

// bytelm-austen (a trained Llama) W4A4 by `method` over the whole Emma tail: ORT's perplexity
// equals sinkquant's to the issue's 1e-3.
void CheckBytelmW4A4(const std::string& method) {
  const std::string model = test::RequireShared("models/bytelm-austen");
  const std::string emma = test::RequireShared("corpora/austen-emma-valid.txt");
  const std::string calib = test::RequireShared("corpora/tinystories-calib.txt");
  const std::string dir = test::TempDir("onnx_bytelm_" + method);
  const std::string args = " --model " + model + " --method " + method +
                           " --w-bits 4 --a-bits 4 --ctx 256 --calib " + calib +
                           " --calib-tokens 8000";
  for (const auto& v : ExportBothFormats(args, emma, dir, kQuantPplRtol)) {
    INFO(method << ": " << v.dump(2));
    CHECK(v["tokens_scored"].get<long>() > 40000);
    CHECK(v["ppl_rel_diff"].get<double>() < kQuantPplRtol);
  }
}

}  // namespace

TEST_CASE("stories260K float export: ONNX Runtime perplexity equals sinkquant eval",
          "[quant][onnx][real]") {
  const Stories s;
  const std::string dir = test::TempDir("onnx_stories_float");
  Sinkquant("eval" + s.Common() + " --data " + s.valid + " --json " + dir + "/eval.json");
  const Run q = Sinkquant("quantize" + s.Common() + " --out " + dir + "/f.onnx --logits-out " +
                          dir + "/ref.json --data " + s.valid);
  CHECK_THAT(q.output, Catch::Contains("linear weights:"));
  const auto v = Verify(dir + "/f.onnx", dir + "/ref.json", kFloatPplRtol, kFloatLogitTol);
  const double eval_ppl = ReadJson(dir + "/eval.json")["ppl"].get<double>();
  const double ort_ppl = v["ppl_onnxruntime"].get<double>();
  INFO("eval " << eval_ppl << " onnxruntime " << ort_ppl);
  CHECK(v["tokens_scored"].get<long>() == ReadJson(dir + "/eval.json")["tokens"].get<long>());
  CHECK(std::abs(ort_ppl - eval_ppl) / eval_ppl < kFloatPplRtol);
}

TEST_CASE("stories260K W4A4 rtn exports: ONNX Runtime perplexity equals sinkquant's simulation",
          "[quant][onnx][real]") {
  CheckStoriesW4A4("rtn");
}

TEST_CASE("stories260K W4A4 rotate exports: ONNX Runtime perplexity equals sinkquant's "
          "simulation", "[quant][onnx][real]") {
  CheckStoriesW4A4("rotate");
}

TEST_CASE("stories260K W4A4 rotate-learned exports: ONNX Runtime perplexity equals sinkquant's "
          "simulation", "[quant][onnx][real][learnrot]") {
  CheckStoriesW4A4("rotate-learned");
}

TEST_CASE(
    "stories260K W4A4 rotate-gptq+act-clip exports (a searched clip per linear): ONNX "
    "Runtime perplexity equals sinkquant's simulation",
    "[quant][onnx][real]") {
  CheckStoriesW4A4("rotate-gptq+act-clip");
}

TEST_CASE(
    "stories260K W4A4 rotate-gptq+outliers exports (8-bit outlier channels beside the 4-bit "
    "path): ONNX Runtime perplexity equals sinkquant's simulation",
    "[quant][onnx][real][outliers]") {
  CheckStoriesW4A4("rotate-gptq+outliers", 0.2);  // 8-bit activations on the outlier side
}

TEST_CASE("bytelm-austen W4A4 rtn exports: ONNX Runtime perplexity within 1e-3",
          "[quant][onnx][real]") {
  CheckBytelmW4A4("rtn");
}

TEST_CASE("bytelm-austen W4A4 rotate exports: ONNX Runtime perplexity within 1e-3",
          "[quant][onnx][real]") {
  CheckBytelmW4A4("rotate");
}

TEST_CASE("bytelm-austen W4A4 rotate-gptq exports: ONNX Runtime perplexity within 1e-3",
          "[quant][onnx][real]") {
  CheckBytelmW4A4("rotate-gptq");
}

TEST_CASE("An export killed midway leaves no file at --out", "[quant][onnx]") {
  const std::string dir = test::TempDir("onnx_kill");
  const std::string tok = test::RequireShared("tokenizers/llama2/tokenizer.json");
  // A random checkpoint big enough (~29M parameters, ~115 MB of float ONNX) that the export
  // takes a while to stream.
  std::ofstream(dir + "/config.json") << R"({"architectures": ["LlamaForCausalLM"],
    "hidden_size": 512, "intermediate_size": 1376, "num_hidden_layers": 4,
    "num_attention_heads": 8, "num_key_value_heads": 8, "vocab_size": 32000,
    "max_position_embeddings": 2048, "rms_norm_eps": 1e-5, "tie_word_embeddings": false})";
  Sinkquant("random-model --config " + dir + "/config.json --dtype f32 --out " + dir + "/ckpt");
  const std::string out = dir + "/m.onnx";
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    freopen("/dev/null", "w", stdout);
    execl(test::Binary().c_str(), "sinkquant", "quantize", "--model", (dir + "/ckpt").c_str(),
          "--tokenizer", tok.c_str(), "--out", out.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Kill it as soon as the export's temporary data file appears.
  bool seen_tmp = false;
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  while (!seen_tmp && std::chrono::steady_clock::now() < deadline) {
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.path().filename().string().rfind("m.onnx.data.tmp.", 0) == 0) seen_tmp = true;
    }
    if (seen_tmp) {
      kill(pid, SIGKILL);
    } else if (waitpid(pid, &status, WNOHANG) == pid) {
      FAIL("the export finished (status " << status << ") before its temporary file was seen");
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  if (!seen_tmp) kill(pid, SIGKILL);
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(seen_tmp);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
  CHECK(!fs::exists(out));
  CHECK(!fs::exists(out + ".data"));
  bool tmp_left = false;  // the killed process could not clean up: only its temp file remains
  for (const auto& e : fs::directory_iterator(dir)) {
    tmp_left |= e.path().filename().string().find(".tmp.") != std::string::npos;
  }
  CHECK(tmp_left);
}

namespace {

// Runs scripts/onnx/generate.mjs on an export folder (or a decoder .onnx); the run must exit
// `want_status`. Returns its JSON result.
nlohmann::json Generate(const std::string& folder, const std::string& args, int want_status) {
  const std::string script = fs::path(VerifyScript()).parent_path() / "generate.mjs";
  const std::string out = folder + ".generate.json";
  const Run r = Shell("node " + script + " --model " + folder + " --threads 1 --json " + out + args);
  INFO(r.output);
  REQUIRE(r.status == want_status);
  return ReadJson(out);
}

// sinkquant's own greedy continuation of `prompt` (what `sinkquant generate` prints), as ids.
std::vector<int> GreedyIds(const Model& m, std::vector<int> ids, int steps) {
  const size_t prompt = ids.size();
  for (int s = 0; s < steps; ++s) {
    const Mat logits = Forward(m, ids);
    Eigen::Index next;
    logits.row(logits.rows() - 1).maxCoeff(&next);
    ids.push_back(static_cast<int>(next));
  }
  return {ids.begin() + static_cast<std::ptrdiff_t>(prompt), ids.end()};
}

}  // namespace

TEST_CASE("stories260K float export folder generates sinkquant's greedy text with the KV cache, "
          "in ONNX Runtime and in transformers.js", "[quant][onnx][real]") {
  const Stories s;
  const std::string dir = test::TempDir("onnx_stories_folder");
  const std::string folder = dir + "/export", scoring = dir + "/scoring.onnx";
  const Run q = Sinkquant("quantize" + s.Common() + " --out " + folder);
  CHECK_THAT(q.output, Catch::Contains("layout decoder"));
  Sinkquant("quantize" + s.Common() + " --layout scoring --out " + scoring);
  for (const char* f : {"onnx/model.onnx", "onnx/model.onnx_data", "config.json",
                        "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                        "quantization.json"}) {
    CHECK(fs::exists(folder + "/" + f));
  }
  const LoadedModel lm = LoadModel(s.model, s.tok);
  const std::vector<int> want = GreedyIds(lm.model, {lm.model.config.bos_id}, 40);
  const auto g = Generate(folder, " --max-new-tokens 40 --check-full-window --scoring " + scoring +
                                      " --transformers-js" + kTolFlag);
  INFO(g.dump(2));
  CHECK(g["ids"].get<std::vector<int>>() == want);
  CHECK(g["scoring"]["argmax_agree"].get<int>() == 40);
  CHECK_THAT(g["text"].get<std::string>(),
             Catch::StartsWith("Once upon a time, there was a little girl named Lily."));
  // The greedy text is the one `sinkquant generate` prints.
  const Run gen = Sinkquant("generate" + s.Common() + " --steps 40");
  CHECK(gen.output.rfind(g["text"].get<std::string>() + "\n", 0) == 0);
}

// Activations stay float here. ONNX Runtime computes a cached step's keys and values with
// one-row GEMMs and a full window's with n-row ones; with 4- or 8-bit activations, the 1e-7
// difference that makes can move one activation code of the BOS row (the attention sink, whose
// per-token scale is large) across a rounding boundary, and that row stays in the cache for
// every later step: seen moving every step's logits by up to 4.6 with a correct graph. So the
// cache's plumbing (positions, masks, KV4 quantization, online and per-head rotations) is
// checked exactly where nothing can flip; the W4A4 graphs are checked against sinkquant's own
// logits by the scoring-layout tests.
TEST_CASE("stories260K W4 KV4 rotate export folders: cached steps equal full windows, padded "
          "batches equal each prompt alone", "[quant][onnx][real]") {
  const Stories s;
  const std::string dir = test::TempDir("onnx_stories_rotate_folder");
  for (const std::string format : {"qdq", "matmulnbits"}) {
    const std::string folder = dir + "/" + format;
    Sinkquant("quantize" + s.Common() + " --method rotate --w-bits 4 --w-group 32 "
              "--kv-bits 4 --onnx-format " + format + " --out " + folder);
    const auto g = Generate(folder, " --max-new-tokens 24 --check-full-window" + kTolFlag +
                                    "--batch '1,403,407,259,261,29;1,365;1,403,400' --batch-steps 6");
    INFO(format << ": " << g.dump(2));
    CHECK(g["full_window"]["max_abs_logit_diff"].get<double>() <= kLogitTolerance);
    CHECK(g["batch"]["max_abs_logit_diff"].get<double>() <= kLogitTolerance);
  }
}

TEST_CASE("An export folder is never written over, and a failed export leaves none",
          "[quant][onnx]") {
  const ModelConfig c = PlainConfig();
  const Model m = BuildDenseModel(c, RandomWeights(c, 11));
  const std::string dir = test::TempDir("onnx_folder_refuse");
  const std::string tok = test::RequireShared("tokenizers/llama2/tokenizer.json");
  OnnxFolderContents contents;
  contents.tokenizer_path = dir + "/missing/tokenizer.json";  // fails after the graph is written
  CHECK_THROWS(ExportOnnxFolder(m, dir + "/export", {}, contents));
  CHECK(!fs::exists(dir + "/export"));
  for (const auto& e : fs::directory_iterator(dir)) FAIL("left behind: " << e.path());
  fs::create_directory(dir + "/export");
  contents.tokenizer_path = tok;
  CHECK_THROWS_WITH(ExportOnnxFolder(m, dir + "/export", {}, contents),
                    Catch::Contains("already exists"));
  CHECK(fs::is_empty(dir + "/export"));
  CHECK_THROWS_WITH(ExportOnnxFolder(m, dir + "/no/such/export", {}, contents),
                    Catch::Contains("does not exist"));
}
