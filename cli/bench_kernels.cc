// sinkquant bench-kernels: throughput of one linear layer [M, K] x [K, N] as float Eigen GEMM,
// as fake-quantized W4A4 (ActQuantLinear over QuantWeightLinear), and as the integer W4A4 kernel (Int4IntegerLinear,
// activation quantization included, and the kernel alone), all in one run; optionally the
// prefill speed of a whole checkpoint in float, fake-quant and integer W4A4, and the same
// layers written as ONNX MatMulNBits models for scripts/onnx/bench-matmulnbits.mjs. With
// --float DTYPE, instead: the packed float GEMM (core/gemm.h) against Eigen on the same layers.
// A benchmark, not a test: figures are printed (and written as JSON).
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>

#include "cli/command.h"
#include "cli/output.h"
#include "core/error.h"
#include "core/gemm.h"
#include "core/numeric.h"
#include "core/strings.h"
#include "core/threads.h"
#include "formats/checkpoint.h"
#include "model/linear.h"
#include "model/model.h"
#include "onnx/export.h"
#include "onnx/writer.h"
#include "quant/integer_linear.h"
#include "quant/quantize_model.h"

namespace sq {
namespace {

// Fastest of `reps` timed calls of each function after one warm-up each. The functions run
// interleaved (f0, f1, ..., f0, f1, ...), so a burst of load from other processes on the
// machine hits them alike and their ratios stay meaningful; the minimum is the least disturbed.
std::vector<double> MinSeconds(int reps, const std::vector<std::function<void()>>& fs) {
  std::vector<double> best(fs.size(), 1e30);
  for (const auto& f : fs) f();
  for (int r = 0; r < reps; ++r) {
    for (size_t i = 0; i < fs.size(); ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      fs[i]();
      const double dt =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best[i] = std::min(best[i], dt);
    }
  }
  return best;
}

Mat RandomMat(int rows, int cols, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  Mat m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = dist(rng);
  return m;
}

std::vector<std::pair<int, int>> ParseShapes(const std::string& s) {
  std::vector<std::pair<int, int>> out;
  for (const std::string& item : SplitList(s, ',')) {
    int k = 0, n = 0;
    Check(std::sscanf(item.c_str(), "%dx%d", &k, &n) == 2 && k > 0 && n > 0,
          "--shapes: expected KxN[,KxN...], got '" + item + "'");
    out.emplace_back(k, n);
  }
  return out;
}

// One MatMulNBits node (bits 4, block `w.group`, accuracy_level 4, default zero point 8) with
// the codes and scales of `w` (PackMatMulNBits's layout, as the exporter writes them).
void WriteMatMulNBits(const QuantizedWeight& w, const std::string& path) {
  const MatMulNBitsWeight packed = PackMatMulNBits(w, path);
  const int K = w.cols, N = w.rows;
  OnnxBuilder ob(path);
  ob.AddInput("A", OnnxType::kFloat, {OnnxDim{std::string("M")}, OnnxDim{int64_t{K}}});
  const int64_t bs = packed.block_size;
  const std::string bw = ob.Uint8("B", {N, packed.n_blocks, bs / 2}, packed.b);
  const std::string sc =
      ob.Float("scales", {static_cast<int64_t>(packed.scales.size())}, packed.scales);
  ob.Node("MatMulNBits", {"A", bw, sc},
          {{"K", int64_t{K}},
           {"N", int64_t{N}},
           {"bits", int64_t{4}},
           {"block_size", bs},
           {"accuracy_level", int64_t{4}}},
          "Y", "com.microsoft");
  ob.AddOutput("Y", OnnxType::kFloat, {OnnxDim{std::string("M")}, OnnxDim{int64_t{N}}});
  ob.Save();
}

nlohmann::json BenchLayer(int m, int k, int n, int group, int reps, const std::string& onnx_dir,
                          Int4Kernel kernel) {
  const Mat x = RandomMat(m, k, 1), wf = RandomMat(n, k, 2);
  const auto owned = MakeOwned(wf, {n, k});
  const DenseLinear dense(owned->View());
  auto qw = std::make_shared<const QuantizedWeight>(QuantizeRtn(wf, {4, group, true, false}));
  const ActQuantLinear fq(std::make_shared<QuantWeightLinear>(qw), {4, 1.0f});
  const Int4IntegerLinear integer(fq, kernel);
  QuantizedActs qa;
  QuantizeActs(x, {4, 1.0f}, integer.packed().group, integer.packed().group_pad, &qa);
  Mat y;
  const double ops = 2.0 * m * k * n;
  const std::vector<double> t = MinSeconds(
      reps, {[&] { dense.Apply(x, y); }, [&] { fq.Apply(x, y); }, [&] { integer.Apply(x, y); },
             [&] { Int4Gemm(qa, integer.packed(), y, kernel); }});
  const double t_float = t[0], t_fq = t[1], t_int = t[2], t_kernel = t[3];
  std::printf("%5d %5d %5d | %9.1f %9.1f %9.1f %9.1f | %6.2fx %6.2fx\n", m, k, n,
              ops / t_float / 1e9, ops / t_fq / 1e9, ops / t_int / 1e9, ops / t_kernel / 1e9,
              t_float / t_int, t_fq / t_int);
  std::fflush(stdout);
  nlohmann::json j = {{"m", m},
                      {"k", k},
                      {"n", n},
                      {"group", qw->group},
                      {"float_gflops", ops / t_float / 1e9},
                      {"fakequant_gflops", ops / t_fq / 1e9},
                      {"int4_linear_gops", ops / t_int / 1e9},
                      {"int4_kernel_gops", ops / t_kernel / 1e9}};
  if (!onnx_dir.empty()) {
    const std::string path = onnx_dir + "/matmulnbits_" + std::to_string(k) + "x" +
                             std::to_string(n) + "_bs" + std::to_string(qw->group) + ".onnx";
    WriteMatMulNBits(*qw, path);
    j["onnx"] = path;
  }
  return j;
}

// One layer's float product y = x W^T with W [n, k] stored as `dtype`: through Eigen (F16/BF16
// widened a block of rows at a time, as DenseLinear did before the packed GEMM) and packed.
nlohmann::json BenchFloatLayer(int m, int k, int n, DType dtype, int reps) {
  const Mat x = RandomMat(m, k, 1);
  std::vector<uint16_t> narrow;
  TensorView w{DType::kF32, {n, k}, nullptr};
  const auto owned = MakeOwned(RandomMat(n, k, 2), {n, k});
  if (dtype == DType::kF32) {
    w.data = owned->View().data;
  } else {
    narrow.resize(static_cast<size_t>(n) * k);
    const float* f = owned->values.data();
    for (size_t i = 0; i < narrow.size(); ++i) {
      narrow[i] = dtype == DType::kBF16 ? FloatToBf16(f[i]) : FloatToF16(f[i]);
    }
    owned->values.resize(0, 0);  // the float copy is not needed past here
    w = {dtype, {n, k}, reinterpret_cast<const std::byte*>(narrow.data())};
  }
  Mat y;
  const double ops = 2.0 * m * k * n;
  const std::vector<double> t =
      MinSeconds(reps, {[&] { EigenLinear(x, w, y); }, [&] { PackedGemm(x, w, y); }});
  std::printf("%5d %6d %6d %4s | %9.1f %9.1f | %6.2fx\n", m, k, n, DTypeName(dtype),
              ops / t[0] / 1e9, ops / t[1] / 1e9, t[0] / t[1]);
  std::fflush(stdout);
  return {{"m", m},           {"k", k}, {"n", n}, {"dtype", DTypeName(dtype)},
          {"eigen_gflops", ops / t[0] / 1e9}, {"packed_gflops", ops / t[1] / 1e9}};
}

nlohmann::json BenchFloat(int m, const std::vector<std::pair<int, int>>& shapes,
                          const std::string& dtype_name, int reps) {
  std::string upper = dtype_name;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  DType dtype;
  Check(ParseDType(upper, &dtype) &&
            (dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16),
        "--float: expected F32, F16 or BF16, got '" + dtype_name + "'");
  Check(kHavePackedGemm, "--float: this build has no packed GEMM (no AVX2+FMA+F16C)");
  std::printf("threads %d, float GEMM y = x W^T, W stored as %s\n", NumThreads(),
              DTypeName(dtype));
  std::printf("%5s %6s %6s %4s | %9s %9s | %7s\n", "M", "K", "N", "W", "Eigen", "packed",
              "pk/Eig");
  std::printf("%24s | %9s %9s |\n", "", "GFLOP/s", "GFLOP/s");
  nlohmann::json layers = nlohmann::json::array();
  for (auto [k, n] : shapes) layers.push_back(BenchFloatLayer(m, k, n, dtype, reps));
  return {{"threads", NumThreads()}, {"float_layers", layers}};
}

// Prefill of `ids` through each model's blocks (embedding + layers) and, separately, its head,
// interleaved across the models. Returns tokens/s of the blocks and of the whole model.
std::vector<std::pair<double, double>> BenchPrefill(const std::vector<const Model*>& models,
                                                    const std::vector<int>& ids, int reps) {
  std::vector<std::function<void()>> fs;
  std::vector<Mat> h(models.size());
  for (size_t i = 0; i < models.size(); ++i) {
    const Model& m = *models[i];
    fs.push_back([&m, &ids, &hi = h[i]] {
      hi = Embed(m, ids);
      for (int l = 0; l < m.config.n_layers; ++l) ForwardBlock(m, l, hi, nullptr);
    });
    fs.push_back([&m, &hi = h[i]] { Head(m, hi, nullptr); });
  }
  const std::vector<double> t = MinSeconds(reps, fs);
  const double T = static_cast<double>(ids.size());
  std::vector<std::pair<double, double>> out;
  for (size_t i = 0; i < models.size(); ++i) {
    out.emplace_back(T / t[2 * i], T / (t[2 * i] + t[2 * i + 1]));
  }
  return out;
}

nlohmann::json BenchModel(const std::string& path, int ctx, int group, int reps,
                          Int4Kernel kernel) {
  Checkpoint ck = LoadCheckpoint(path);
  Check(ctx <= ck.config.max_position, "--ctx exceeds max_position_embeddings");
  const Model fp = BuildDenseModel(ck.config, std::move(ck.weights));
  QuantConfig cfg;
  cfg.w_group = group;
  cfg.clip_search = false;  // speed does not depend on the clip ratio
  cfg.a_bits = 4;
  const Model fq = QuantizeModel(fp, cfg, {});
  Model integer = fq;
  const int replaced = UseIntegerKernels(integer, kernel);
  std::mt19937 rng(1);
  std::vector<int> ids(ctx);
  for (int& id : ids) id = static_cast<int>(rng() % ck.config.vocab);
  std::printf("\nprefill %s, ctx %d, %d layers, %d integer linears (%s, lm_head float)\n",
              path.c_str(), ctx, ck.config.n_layers, replaced,
              cfg.weight_spec().Describe().c_str());
  nlohmann::json j = {{"model", path}, {"ctx", ctx}};
  const auto r = BenchPrefill({&fp, &fq, &integer}, ids, reps);
  const char* names[3] = {"float", "fakequant_w4a4", "integer_w4a4"};
  for (int i = 0; i < 3; ++i) {
    std::printf("%-16s blocks %8.1f tokens/s   whole model (float lm_head) %8.1f tokens/s\n",
                names[i], r[i].first, r[i].second);
    j[names[i]] = {{"blocks_tokens_per_s", r[i].first}, {"whole_tokens_per_s", r[i].second}};
  }
  std::printf("integer / float: blocks %.2fx, whole model %.2fx\n", r[2].first / r[0].first,
              r[2].second / r[0].second);
  return j;
}

int RunBenchKernels(Args& a) {
  const int m = a.Int("m", 512, 1, 1 << 20);
  const auto shapes = ParseShapes(a.Str("shapes", "1024x1024,1024x3072,3072x1024,4096x4096"));
  const int group = a.Int("group", 128, 0, 1 << 20);
  const int reps = a.Int("reps", 3, 1, 1 << 20);
  const std::string model = a.Str("model", "");
  const int ctx = a.Int("ctx", 512, 1, kMaxCtx);
  const std::string onnx_dir = a.Str("onnx-dir", "");
  const std::string json = a.OutputFile("json");
  const std::string float_dtype = a.Str("float", "");
  std::vector<std::pair<std::string, Int4Kernel>> kernels;
  for (Int4Kernel k : kInt4Kernels) kernels.emplace_back(Int4KernelName(k), k);
  Int4Kernel kernel = a.OneOf("int4-kernel", "auto", kernels);
  Check(Int4KernelSupported(kernel), std::string("bench-kernels: --int4-kernel ") +
                                         Int4KernelName(kernel) + ": this CPU cannot run it");
  if (kernel == Int4Kernel::kAuto) kernel = BestInt4Kernel();  // print the one that runs
  SetNumThreads(ThreadsFlag(a));
  a.Finish();
  Check(m > 0 && reps > 0 && ctx > 0, "--m, --reps and --ctx must be positive");
  if (!float_dtype.empty()) {
    const nlohmann::json j = BenchFloat(m, shapes, float_dtype, reps);
    if (!json.empty()) WriteFileAtomic(json, j.dump(2) + "\n");
    return 0;
  }
  Check(group >= 0, "--group must be >= 0 (0: per channel)");
  if (!onnx_dir.empty()) {
    Check(group >= 16 && group <= 256 && (group & (group - 1)) == 0,
          "--onnx-dir: MatMulNBits needs --group in {16, 32, 64, 128, 256}");
    std::filesystem::create_directories(onnx_dir);
  }

  std::printf("threads %d, integer kernel %s, weights w4 %s sym, activations a4 per token\n",
              NumThreads(), Int4KernelName(kernel),
              group > 0 ? ("g" + std::to_string(group)).c_str() : "per-channel");
  std::printf("%5s %5s %5s | %9s %9s %9s %9s | %7s %7s\n", "M", "K", "N", "float", "fakequant",
              "int4", "kernel", "int/flt", "int/fq");
  std::printf("%17s | %9s %9s %9s %9s |\n", "", "GFLOP/s", "GFLOP/s", "GOP/s", "GOP/s");
  nlohmann::json j = {{"threads", NumThreads()},
                      {"kernel", Int4KernelName(kernel)},
                      {"group", group},
                      {"layers", nlohmann::json::array()}};
  for (auto [k, n] : shapes)
    j["layers"].push_back(BenchLayer(m, k, n, group, reps, onnx_dir, kernel));
  if (!model.empty()) j["prefill"] = BenchModel(model, ctx, group, reps, kernel);
  if (!json.empty()) WriteFileAtomic(json, j.dump(2) + "\n");
  return 0;
}

const bool kRegistered = RegisterCommand(
    {"bench-kernels",
     "throughput of float, fake-quant W4A4 and integer W4A4 linears (and model prefill)",
     "[--m 512] [--shapes 1024x1024,...] [--group 128 (0: per channel)] [--reps 3] [--threads N]\n"
     "  [--model DIR --ctx 512] [--onnx-dir DIR (MatMulNBits models for ORT)] [--json FILE]\n"
     "  [--int4-kernel auto|scalar|avx2|avx512-vnni|amx-int8]\n"
     "  [--float F32|F16|BF16 (instead: packed float GEMM against Eigen on --shapes)]",
     RunBenchKernels});

}  // namespace
}  // namespace sq
