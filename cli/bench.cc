// sinkquant bench: prefill speed of a checkpoint against this machine's plain GEMM rate
// (measured in the same run), and peak memory. A benchmark, not a test: figures are printed.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>

#include "cli/command.h"
#include "cli/output.h"
#include "core/error.h"
#include "core/gemm.h"
#include "core/memory.h"
#include "core/numeric.h"
#include "core/parallel_blocks.h"
#include "core/threads.h"
#include "formats/checkpoint.h"
#include "model/flops.h"
#include "model/model.h"

namespace sq {
namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

double PeakRssMiB() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;
}

// GFLOP/s of one large float GEMM [m, k] x [k, n] through Eigen, and through the packed GEMM
// the linears use (0 where the build has none): the rates a GEMM-bound forward pass can hope for.
std::pair<double, double> GemmGflops(int m, int k, int n, int reps) {
  Mat a = Mat::Random(m, k), b = Mat::Random(n, k), c(m, n);
  const TensorView w{DType::kF32, {n, k}, reinterpret_cast<const std::byte*>(b.data())};
  const auto rate = [&](auto&& gemm) {
    gemm();  // warm-up
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) gemm();
    return 2.0 * m * k * n * reps / Seconds(t0) / 1e9;
  };
  // One column block per thread, as Eigen's own threaded GEMM splits (the build turns that off:
  // core/parallel_blocks.h); a speed yardstick, so its sums may depend on the thread count.
  const Eigen::Index per_thread = (n + NumThreads() - 1) / NumThreads();
  const double eigen = rate([&] {
    ForEachBlock(
        n,
        [&](Eigen::Index c0, Eigen::Index width) {
          c.middleCols(c0, width).noalias() = a * b.middleRows(c0, width).transpose();
        },
        per_thread);
  });
  if (!kHavePackedGemm) return {eigen, 0.0};
  // The linears' own product; with --matmul-precision bf16, on bf16 weights as a checkpoint's.
  std::vector<uint16_t> narrow;
  TensorView own = w;
  if (GetMatmulPrecision() == MatmulPrecision::kBf16) {
    narrow.resize(b.size());
    for (size_t i = 0; i < narrow.size(); ++i) narrow[i] = FloatToBf16(b.data()[i]);
    own = {DType::kBF16, {n, k}, reinterpret_cast<const std::byte*>(narrow.data())};
  }
  return {eigen, rate([&] { PackedGemm(a, own, c); })};
}

int RunBench(Args& a) {
  const std::string path = a.Required("model");
  const int ctx = a.Int("ctx", 512, 1, kMaxCtx);
  const int reps = a.Int("reps", 3, 1, 1 << 20);
  const std::string json = a.OutputFile("json");
  SetNumThreads(ThreadsFlag(a));
  SetMatmulPrecision(MatmulPrecisionFlag(a));
  a.Finish();
  KeepFreedHeapMemory();
  Check(ctx > 0 && reps > 0, "--ctx and --reps must be positive");

  Checkpoint ck = LoadCheckpoint(path);
  Check(ctx <= ck.config.max_position, "--ctx exceeds max_position_embeddings");
  Model m = BuildDenseModel(ck.config, std::move(ck.weights));
  std::mt19937 rng(1);
  std::vector<int> ids(ctx);
  for (int& id : ids) id = static_cast<int>(rng() % ck.config.vocab);

  Forward(m, ids);  // warm-up: page in the mapped weights
  const auto t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < reps; ++r) Forward(m, ids);
  const double secs = Seconds(t0) / reps;
  const double gflops = PrefillFlops(ck.config, ctx) / secs / 1e9;
  const auto [gemm, packed] = GemmGflops(ctx, ck.config.hidden, 4 * ck.config.hidden, 5);

  std::printf("model: %s (%s, %d layers, hidden %d, vocab %d, %s weights)\n", path.c_str(),
              ck.config.architecture.c_str(), ck.config.n_layers, ck.config.hidden,
              ck.config.vocab, DTypeName(m.weights.layers[0].wq.dtype));
  std::printf("threads: %d\n", NumThreads());
  std::printf("matmul precision: %s\n", MatmulPrecisionName());
  std::printf("prefill ctx %d: %.3f s, %.1f tokens/s, %.1f GFLOP/s\n", ctx, secs, ctx / secs, gflops);
  std::printf("reference Eigen GEMM [%d x %d] x [%d x %d]: %.1f GFLOP/s\n", ctx, ck.config.hidden,
              ck.config.hidden, 4 * ck.config.hidden, gemm);
  std::printf("forward / GEMM: %.0f%%\n", 100 * gflops / gemm);
  if (packed > 0) {
    std::printf("packed GEMM (the linears' own), same shape: %.1f GFLOP/s; forward / it: %.0f%%\n",
                packed, 100 * gflops / packed);
  }
  std::printf("peak RSS: %.0f MiB\n", PeakRssMiB());
  if (!json.empty()) {
    nlohmann::json j = {{"ctx", ctx},
                        {"seconds", secs},
                        {"tokens_per_s", ctx / secs},
                        {"gflops", gflops},
                        {"gemm_gflops", gemm},
                        {"packed_gemm_gflops", packed},
                        {"peak_rss_mib", PeakRssMiB()},
                        {"threads", NumThreads()},
                        {"matmul_precision", MatmulPrecisionName()}};
    WriteFileAtomic(json, ReportJson(j));
  }
  return 0;
}

const bool kRegistered = RegisterCommand(
    {"bench", "prefill speed (tokens/s, GFLOP/s) against this machine's GEMM rate, peak RSS",
     "--model PATH [--ctx 512] [--reps 3] [--threads N] [--json FILE]\n"
     "  [--matmul-precision f32|bf16]",
     RunBench});

}  // namespace
}  // namespace sq
