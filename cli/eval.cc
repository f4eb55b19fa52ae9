// sinkquant eval: perplexity of a model over a text file (llama.cpp's `perplexity`); with
// quantization flags, the float model against the quantized one over the same tokens.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "calib/dataset.h"
#include "calib/eval.h"
#include "calib/quant_error.h"
#include "cli/command.h"
#include "cli/output.h"
#include "cli/quant_flags.h"
#include "core/error.h"
#include "core/memory.h"
#include "core/threads.h"
#include "model/loader.h"
#include "quant/integer_linear.h"
#include "quant/recipe.h"
#include "quant/recipe_pipeline.h"

namespace sq {
namespace {

struct EvalOptions {
  std::string model, tokenizer, data, json;
  WindowOptions windows;
  int threads = 0;
  MatmulPrecision matmul = MatmulPrecision::kF32;
  // Quantization (any of these given: compare float against quantized).
  QuantConfig config;
  MethodFlags recipe;
  int sqnr_windows = 4;
  bool fake_quant = false;  // keep the float fake-quant path instead of the integer kernels
};

EvalOptions ParseEvalOptions(Args& a) {
  EvalOptions o;
  o.model = a.Required("model");
  o.tokenizer = a.Str("tokenizer", "");
  o.data = a.Required("data");
  o.windows.ctx = CtxFlag(a);
  o.windows.max_tokens = TokensFlag(a, "max-tokens");
  o.json = a.OutputFile("json");
  o.threads = ThreadsFlag(a);
  o.matmul = MatmulPrecisionFlag(a);
  o.fake_quant = a.Flag("fake-quant");

  o.config = ParseQuantConfig(a, FloatDefaults());
  o.recipe = ParseMethodFlags(a, o.config);
  o.sqnr_windows = a.Int("sqnr-windows", 4, 0, 1 << 20);
  a.Finish();
  // A recipe's float baseline and calibration forwards would run on rounded inputs too, and its
  // model would differ from what `quantize` builds.
  Check(o.matmul == MatmulPrecision::kF32 || !o.recipe.quant,
        "--matmul-precision bf16 is for the float model (eval without --w-bits/--a-bits/"
        "--kv-bits/--method)");
  return o;
}

void PrintFloat(const EvalOptions& o, size_t n_windows, const PplResult& r) {
  std::printf("model:  %s\n", o.model.c_str());
  std::printf("data:   %s (%zu windows, ctx %d)\n", o.data.c_str(), n_windows, o.windows.ctx);
  std::printf("tokens scored: %ld\n", r.tokens);
  std::printf("mean NLL: %.6f nats\n", r.nll);
  std::printf("PPL = %.4f +/- %.4f\n", r.ppl, r.ppl_stderr);
  std::printf("speed: %.1f tokens/s (%.2f s, %d threads)\n", r.tokens_per_s, r.seconds, NumThreads());
  if (o.matmul != MatmulPrecision::kF32) std::printf("matmul: %s\n", MatmulPrecisionName());
}

// How --w-group applies to each input width K of the model (a group must tile K: G >= K is per
// channel; otherwise ceil(K / G) groups, the last one shorter when G does not divide K).
std::string GroupNote(const Model& m, const QuantConfig& c) {
  if (c.w_bits >= 16) return "";
  std::set<int> ks;
  for (const LayerLinears& L : m.linears) {
    for (const auto* lin : {L.q.get(), L.o.get(), L.down.get()}) ks.insert(lin->in_features());
  }
  std::string s;
  for (int k : ks) {
    if (!s.empty()) s += "; ";
    s += "K=" + std::to_string(k) + ": ";
    if (c.w_group == 0 || c.w_group >= k) {
      s += "per-channel";
    } else {
      const int n = (k + c.w_group - 1) / c.w_group, last = k - (n - 1) * c.w_group;
      s += std::to_string(n) + " groups";
      if (last != c.w_group) s += " (last of " + std::to_string(last) + ")";
    }
  }
  return s;
}

// Calibration windows: the text of --calib, windowed like the evaluation text.
std::vector<Window> CalibWindows(const EvalOptions& o, const Tokenizer& tok) {
  const std::string& calib = o.recipe.calib;
  if (calib.empty()) return {};
  CheckCalibIsNotData(calib, o.data);
  WindowOptions wo = o.windows;
  wo.max_tokens = o.recipe.calib_tokens;
  return MakeWindows(ReadTextFile(calib), tok, wo, calib);
}

void PrintSqnr(const std::vector<LinearSqnr>& sq, int windows) {
  if (sq.empty()) return;
  std::printf("output SQNR per linear (dB, float input of that linear, %d windows):\n", windows);
  std::printf("  layer");
  std::vector<Proj> cols;
  for (Proj p : kAllProjs) {
    for (const LinearSqnr& s : sq) {
      if (s.proj == p) {
        cols.push_back(p);
        std::printf(" %7s", ProjName(p));
        break;
      }
    }
  }
  std::printf("\n");
  std::map<int, std::map<Proj, double>> rows;
  for (const LinearSqnr& s : sq) rows[s.layer][s.proj] = s.sqnr_db;
  auto print_row = [&](int layer, const std::map<Proj, double>& row) {
    if (layer < 0) std::printf("  %5s", "head"); else std::printf("  %5d", layer);
    for (Proj p : cols) {
      auto it = row.find(p);
      if (it == row.end()) std::printf(" %7s", "-"); else std::printf(" %7.2f", it->second);
    }
    std::printf("\n");
  };
  for (const auto& [layer, row] : rows) if (layer >= 0) print_row(layer, row);
  if (rows.count(-1)) print_row(-1, rows[-1]);
}

nlohmann::json PplJson(const PplResult& r) {
  return {{"ppl", r.ppl}, {"ppl_stderr", r.ppl_stderr}, {"nll", r.nll}, {"tokens", r.tokens},
          {"tokens_per_s", r.tokens_per_s}};
}

// Which path ran the quantized linears.
std::string KernelNote(int integer_linears, bool fake_quant) {
  if (fake_quant) return "fake-quant float (--fake-quant)";
  if (integer_linears == 0) return "fake-quant float (no linear has int4 weights and 2-8 bit activations)";
  return std::string("integer W4A4 (") + Int4KernelName(BestInt4Kernel()) + ") on " +
         std::to_string(integer_linears) + " linears, bit-identical to fake-quant; the rest float";
}

int RunQuantEval(const EvalOptions& o, LoadedModel& lm, const std::vector<Window>& windows) {
  const std::vector<Window> calib = CalibWindows(o, *lm.tokenizer);
  const Recipe asked = MakeRecipe(o.recipe.method, o.config);
  Check(!asked.config.gptq || !calib.empty(),
        "--method " + asked.name + " needs calibration text: --calib FILE");
  // Quantized one layer at a time while both models run (quant/recipe_pipeline.h). The integer
  // kernels give the same logits as the fake-quant path, bit for bit, faster.
  RecipePipeline pipe(lm.model, asked, calib, !o.fake_quant);
  const Recipe& recipe = pipe.recipe();  // what auto chose, or the one asked for
  CompareOptions co;
  co.sqnr_windows = o.sqnr_windows;
  co.sqnr_reference = recipe.transforms.empty() ? nullptr : &pipe.transformed();
  co.progress = StderrProgress("quantize+eval", "layer", TokenCount(windows));
  co.hooks = pipe.Hooks();
  const CompareResult r = EvalQuantized(lm.model, pipe.quantized(), windows, co);
  const QuantizeReport report = pipe.report();
  const std::vector<std::string>& log = pipe.log();
  const int integer_linears = report.integer_linears;

  long calib_tokens = 0;
  for (const Window& w : calib) calib_tokens += static_cast<long>(w.tokens.size());
  std::printf("model:  %s\n", o.model.c_str());
  std::printf("data:   %s (%zu windows, ctx %d)\n", o.data.c_str(), windows.size(), o.windows.ctx);
  if (!o.recipe.calib.empty()) {
    std::printf("calib:  %s (%zu windows, %ld tokens)\n", o.recipe.calib.c_str(), calib.size(),
                calib_tokens);
  }
  std::printf("recipe:");
  for (const auto& [k, v] : recipe.Settings()) std::printf(" %s=%s", k.c_str(), v.c_str());
  std::printf("\n");
  for (const std::string& line : log) std::printf("  transform: %s\n", line.c_str());
  if (const std::string g = GroupNote(lm.model, recipe.config); !g.empty()) {
    std::printf("weight groups: %s\n", g.c_str());
  }
  std::printf("kv cache: %s; embeddings float (a lookup)\n", report.kv.c_str());
  std::printf("kernels: %s\n", KernelNote(integer_linears, o.fake_quant).c_str());
  std::printf("quantized in %.2f s (%.1f KiB of quantized weights)\n", report.seconds,
              report.weight_bytes / 1024.0);
  std::printf("tokens scored: %ld\n", r.tokens);
  std::printf("float PPL = %.4f +/- %.4f\n", r.fp.ppl, r.fp.ppl_stderr);
  std::printf("quant PPL = %.4f +/- %.4f  (delta %+.4f, ratio %.4f)\n", r.quant.ppl,
              r.quant.ppl_stderr, r.quant.ppl - r.fp.ppl, r.quant.ppl / r.fp.ppl);
  PrintOverflowedPpl(r.quant.ppl, r.quant.nll);
  std::printf("KL(float || quant): mean %.6f, p99 %.6f, max %.6f nats\n", r.kld_mean, r.kld_p99,
              r.kld_max);
  std::printf("same top token: %.2f%%\n", 100.0 * r.top1);
  PrintSqnr(r.linears, std::min<int>(o.sqnr_windows, windows.size()));
  // Both models and the quantization advance together, layer by layer: the total is one clock.
  std::printf("time: %.2f s in all (quantizing %.2f s, the quantized forward %.2f s; %d threads)\n",
              r.fp.seconds, report.seconds, r.quant.seconds, NumThreads());

  if (!o.json.empty()) {
    nlohmann::json layers = nlohmann::json::array();
    for (const LinearSqnr& s : r.linears) {
      layers.push_back({{"layer", s.layer}, {"linear", ProjName(s.proj)},
                        {"sqnr_db", std::isfinite(s.sqnr_db) ? nlohmann::json(s.sqnr_db)
                                                             : nlohmann::json(nullptr)}});
    }
    nlohmann::json settings = nlohmann::json::object();
    for (const auto& [k, v] : recipe.Settings()) settings[k] = v;
    nlohmann::json formats = nlohmann::json::array();
    for (const LinearReport& lr : report.linears) {
      formats.push_back({{"layer", lr.layer}, {"linear", ProjName(lr.proj)}, {"format", lr.format}});
    }
    nlohmann::json j = {{"fp", PplJson(r.fp)},       {"quant", PplJson(r.quant)},
                        {"delta_ppl", r.quant.ppl - r.fp.ppl},
                        {"kld", r.kld_mean},         {"kld_p99", r.kld_p99},
                        {"kld_max", r.kld_max},      {"top1", r.top1},
                        {"tokens", r.tokens},        {"layers", layers},
                        {"recipe", settings},        {"transforms", log},
                        {"linears", formats},        {"kv", report.kv},
                        {"model", o.model},          {"data", o.data},
                        {"calib", o.recipe.calib},          {"calib_tokens", calib_tokens},
                        {"ctx", o.windows.ctx},      {"quantize_seconds", report.seconds},
                        {"integer_linears", integer_linears}};
    WriteFileAtomic(o.json, ReportJson(j));
  }
  return 0;
}

int RunEval(Args& a) {
  EvalOptions o = ParseEvalOptions(a);
  SetNumThreads(o.threads);
  SetMatmulPrecision(o.matmul);
  LoadedModel lm = LoadModel(o.model, o.tokenizer);
  o.windows.ctx = ResolveCtx(o.windows.ctx, lm.model.config);
  const std::string text = ReadTextFile(o.data);
  const auto windows = MakeWindows(text, *lm.tokenizer, o.windows, o.data);
  if (o.recipe.quant) return RunQuantEval(o, lm, windows);
  KeepFreedHeapMemory();

  const PplResult r = EvaluatePerplexity(lm.model, windows, nullptr, {}, StderrProgress("eval", "layer", TokenCount(windows)));
  PrintFloat(o, windows.size(), r);
  if (!o.json.empty()) {
    nlohmann::json j = {{"ppl", r.ppl},
                        {"ppl_stderr", r.ppl_stderr},
                        {"nll", r.nll},
                        {"tokens", r.tokens},
                        {"tokens_per_s", r.tokens_per_s},
                        {"model", o.model},
                        {"data", o.data},
                        {"ctx", o.windows.ctx},
                        {"matmul_precision", MatmulPrecisionName()}};
    WriteFileAtomic(o.json, ReportJson(j));
  }
  return 0;
}

const bool kRegistered = RegisterCommand(
    {"eval", "perplexity of a model on a text file; float vs quantized with --w-bits/--a-bits",
     std::string("--model PATH [--tokenizer PATH] --data FILE [--ctx N] [--max-tokens N]\n"
                 "  [--json FILE] [--threads N] [--matmul-precision f32|bf16]\n"
                 "  quantized (compares float and quantized over the same tokens):\n"
                 "  [--method rtn|gptq|smooth|rotate|...[+kv-rotate][+sink-aware]] [--gptq]\n"
                 "  [--calib FILE]\n"
                 "  [--calib-tokens N] [--sqnr-windows N]\n") +
         kQuantFlagsUsage +
         "  [--fake-quant]  (run W4A4 linears in float instead of the integer kernels; same "
         "numbers)",
     RunEval});

}  // namespace
}  // namespace sq
