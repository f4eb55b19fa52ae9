// sinkquant bench-gptq: GPTQ on a (random-weight) checkpoint with random calibration tokens,
// reporting time and peak RSS. A benchmark, not a test: it asserts nothing.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <random>

#include "cli/command.h"
#include "cli/quant_flags.h"
#include "core/error.h"
#include "core/threads.h"
#include "formats/checkpoint.h"
#include "quant/quantize_model.h"

namespace sq {
namespace {

double PeakRssMiB() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;
}

// Current resident memory split (MiB): anonymous (what GPTQ allocates) and file-backed (pages of
// the memory-mapped checkpoint, clean and reclaimable), from /proc/self/status.
std::string RssSplit() {
  std::ifstream f("/proc/self/status");
  std::string line, out;
  while (std::getline(f, line)) {
    for (const char* key : {"RssAnon:", "RssFile:"}) {
      if (line.rfind(key, 0) == 0) {
        const double kib = std::atof(line.c_str() + std::strlen(key));
        char buf[64];
        std::snprintf(buf, sizeof(buf), "%s%s %.0f MiB", out.empty() ? "" : ", ", key, kib / 1024);
        out += buf;
      }
    }
  }
  return out;
}

int RunBenchGptq(Args& a) {
  const std::string path = a.Required("model");
  const int layers = a.Int("layers", 0, 0, 1024);
  const int n_windows = a.Int("windows", 4, 1, 1 << 20);
  const int tokens = a.Int("tokens", 256, 1, 1 << 20);
  const int threads = ThreadsFlag(a);
  QuantConfig cfg;
  cfg.gptq = true;
  cfg.w_bits = a.IntOneOf("w-bits", 4, kBitsChoices);
  cfg.w_group = a.Int("w-group", 128, 0, 1 << 20);
  cfg.act_order = a.Flag("act-order");
  a.Finish();
  SetNumThreads(threads);
  Check(n_windows > 0 && tokens > 1, "--windows and --tokens must be positive (tokens > 1)");

  Checkpoint ck = LoadCheckpoint(path);
  Check(layers >= 0 && layers <= ck.config.n_layers,
        "--layers " + std::to_string(layers) + " outside [0, " +
            std::to_string(ck.config.n_layers) + "]");
  if (layers > 0) {  // the first `layers` blocks only (then the final norm and lm_head)
    ck.config = SliceLayers(ck.config, 0, layers);
    ck.weights.layers.resize(layers);
  }
  const Model fp = BuildDenseModel(ck.config, ck.weights);
  const double rss_loaded = PeakRssMiB();
  Check(tokens <= fp.config.max_position, "--tokens exceeds max_position_embeddings");

  std::mt19937_64 rng(1);
  std::vector<Window> calib(n_windows);
  for (Window& w : calib) {
    w.tokens.resize(tokens);
    for (int& t : w.tokens) t = static_cast<int>(rng() % fp.config.vocab);
  }
  std::printf("model: %s (%s, %d of its layers, hidden %d, intermediate %d, vocab %d)\n",
              path.c_str(), ck.config.architecture.c_str(), fp.config.n_layers,
              fp.config.hidden, fp.config.intermediate, fp.config.vocab);
  std::printf("GPTQ: %s, block %d, act-order %s, lm_head float; calibration %d windows x %d "
              "random tokens; %d threads\n",
              cfg.weight_spec().Describe().c_str(), cfg.gptq_block, cfg.act_order ? "on" : "off",
              n_windows, tokens, NumThreads());
  std::fflush(stdout);
  const auto start = std::chrono::steady_clock::now();
  QuantizeReport rep;
  const Model q = QuantizeModel(fp, cfg, calib, &rep, [&](int done, int total) {
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "layer %d/%d done at %.1f s, peak RSS %.0f MiB (now %s)\n", done, total,
                 s, PeakRssMiB(), RssSplit().c_str());
  });
  int quantized = 0;
  for (const LinearReport& lr : rep.linears) quantized += lr.format.rfind("float", 0) != 0;
  const size_t max_k = std::max(fp.config.hidden, std::max(fp.config.intermediate, fp.config.q_dim()));
  std::printf("quantized linears: %d in %.1f s (%.2f s per layer)\n", quantized, rep.seconds,
              rep.seconds / fp.config.n_layers);
  std::printf("kept hidden states: %.1f MiB; largest Hessian (double, %zux%zu): %.1f MiB\n",
              rep.hidden_state_bytes / 1048576.0, max_k, max_k,
              max_k * max_k * 8 / 1048576.0);
  std::printf("quantized weights: %.1f MiB\n", rep.weight_bytes / 1048576.0);
  std::printf("peak RSS: %.0f MiB after loading, %.0f MiB at the end (now %s; file = mapped "
              "checkpoint pages)\n", rss_loaded, PeakRssMiB(), RssSplit().c_str());
  return 0;
}

const bool kRegistered = RegisterCommand(
    {"bench-gptq", "GPTQ time and peak RSS on a checkpoint with random calibration tokens",
     "--model PATH [--layers N (0 = all)] [--windows 4] [--tokens 256] [--w-bits 4] "
     "[--w-group 128] [--act-order] [--threads N]",
     RunBenchGptq});

}  // namespace
}  // namespace sq
