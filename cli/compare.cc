// sinkquant compare: every recipe against the float model on the same text, one table.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>
#include <utility>

#include "calib/dataset.h"
#include "cli/command.h"
#include "cli/output.h"
#include "cli/quant_flags.h"
#include "core/error.h"
#include "core/strings.h"
#include "core/threads.h"
#include "model/loader.h"
#include "quant/recipe.h"
#include "quant/recipe_comparison.h"

namespace sq {
namespace {

constexpr const char* kDefaultMethods = "fp,rtn,gptq,smooth,rotate,rotate-gptq,smooth-rotate";
constexpr const char* kParetoMethods = "rtn,rotate,rotate-gptq";
constexpr const char* kParetoBits = "W8A8,W4A16,W4A8,W4A4+2L,W4A4";

struct CompareCliOptions {
  std::string model, tokenizer, calib, data, json;
  WindowOptions windows;
  long calib_tokens = 0;
  int threads = 0;
  CompareRecipesOptions run;
  std::vector<BitSetting> pareto;  // --pareto: the bit settings swept (empty: no sweep)
};

std::vector<BitSetting> ParseParetoFlags(Args& a, int kv_bits) {
  const bool on = a.Flag("pareto");
  Check(on || !a.Has("pareto-bits"), "--pareto-bits needs --pareto");
  const std::string list = a.Str("pareto-bits", kParetoBits);
  std::vector<BitSetting> out;
  if (!on) return out;
  for (const std::string& item : SplitList(list, ',')) {
    if (!item.empty()) out.push_back(ParseBitSetting("pareto-bits", item, kv_bits, true));
  }
  Check(!out.empty(), "--pareto-bits: no bit settings given");
  return out;
}

// Without flags every recipe runs at W4A4 (the question `compare` answers).
QuantConfig W4A4Defaults() {
  QuantConfig c = FloatDefaults();
  c.w_bits = c.a_bits = 4;
  return c;
}

CompareCliOptions ParseCompareOptions(Args& a) {
  CompareCliOptions o;
  o.model = a.Required("model");
  o.tokenizer = a.Str("tokenizer", "");
  o.calib = a.Required("calib");
  o.data = a.Required("data");
  o.json = a.OutputFile("json");
  o.windows.ctx = CtxFlag(a);
  o.windows.max_tokens = TokensFlag(a, "max-tokens");
  o.calib_tokens = TokensFlag(a, "calib-tokens");
  o.threads = ThreadsFlag(a);
  // Empty items are skipped ("fp,,rtn" runs fp and rtn).
  const bool pareto = a.Has("pareto");
  o.run.methods = SplitList(a.Str("methods", pareto ? kParetoMethods : kDefaultMethods), ',');
  std::erase(o.run.methods, "");
  o.run.ratio_windows = a.Int("ratio-windows", 4, 0, 1 << 20);
  o.run.integer_kernels = !a.Flag("fake-quant");
  o.run.base = ParseQuantConfig(a, W4A4Defaults());
  CheckFlagsRead(a, o.run.methods, o.run.base, "methods");
  o.pareto = ParseParetoFlags(a, o.run.base.kv_bits);
  a.Finish();
  return o;
}

// The widths of the method and bits columns: at least 20 and 10, wider for longer names
// ("rotate-gptq+act-clip+seq+outliers", "W4A4KV16+32C"), so the columns stay aligned.
std::pair<int, int> NameWidths(const std::vector<RecipeRow>& rows) {
  size_t m = 20, b = 10;
  for (const RecipeRow& r : rows) {
    m = std::max(m, r.method.size());
    b = std::max(b, r.bit_setting.Name().size());
  }
  return {static_cast<int>(m), static_cast<int>(b)};
}

void PrintTable(const std::vector<RecipeRow>& rows) {
  const auto [mw, bw] = NameWidths(rows);
  std::printf("%-*s %-*s %8s %8s %7s %6s %8s %-18s %8s %-18s %6s\n", mw, "method", bw, "bits",
              "ppl", "dppl", "KL", "top-1", "max/med", "(worst input)", "tok m/m", "(worst input)",
              "time s");
  for (const RecipeRow& r : rows) {
    std::printf("%-*s %-*s %8.4f %+8.4f %7.4f %6.3f %8.1f %-18s %8.1f %-18s %6.1f\n", mw,
                r.method.c_str(), bw, r.bit_setting.Name().c_str(), r.ppl, r.delta_ppl, r.kld,
                r.top1, r.worst_ratio, r.worst_site.c_str(), r.worst_token_ratio,
                r.worst_token_site.c_str(), r.quantize_seconds + r.eval_seconds);
  }
  for (const RecipeRow& r : rows) {
    for (const std::string& line : r.log) std::printf("  %s: %s\n", r.method.c_str(), line.c_str());
    if (!r.sink.empty()) std::printf("  %s: %s\n", r.method.c_str(), r.sink.c_str());
  }
}

// Smallest first; on a tie in size, fewest activation bits, then fewest KV bits, then lowest KL.
std::vector<RecipeRow> ByCost(std::vector<RecipeRow> rows) {
  auto key = [](const RecipeRow& r) {
    return std::make_tuple(r.weight_bytes, r.act_bits, r.bit_setting.kv_bits, r.kld);
  };
  std::stable_sort(rows.begin(), rows.end(),
                   [&](const RecipeRow& a, const RecipeRow& b) { return key(a) < key(b); });
  return rows;
}

// What frontier row `r` buys over the dearest frontier row that costs no more on any axis
// ("" for the cheapest): "+3.49 bits/weight, +4 activation bits: KL 0.0903 -> 0.0006".
std::string WhatItBuys(const RecipeRow& r, const std::vector<RecipeRow>& frontier) {
  const RecipeRow* base = nullptr;
  auto cost = [](const RecipeRow& x) {
    return x.bits_per_weight + x.act_bits + x.bit_setting.kv_bits;
  };
  for (const RecipeRow& o : frontier) {
    if (&o != &r && CostsAtMost(o, r) && (!base || cost(o) > cost(*base))) base = &o;
  }
  if (!base) return "";
  char b[256];
  std::string s = base->method + " " + base->bit_setting.Name() + " -> " + r.method + " " +
                  r.bit_setting.Name() + ":";
  auto add = [&](double d, const char* what, const char* fmt) {
    if (d == 0) return;
    std::snprintf(b, sizeof b, fmt, d, what);
    s += b;
  };
  add(r.bits_per_weight - base->bits_per_weight, "bits/weight", " %+.2f %s");
  add(r.act_bits - base->act_bits, "activation bits", " %+.3g %s");
  add(r.bit_setting.kv_bits - base->bit_setting.kv_bits, "KV bits", " %+.0f %s");
  std::snprintf(b, sizeof b, ", KL %.4f -> %.4f", base->kld, r.kld);
  return s + b;
}

// The size / quality table of a --pareto sweep, then what each frontier row buys over the
// frontier row below it. `md`: a markdown table (the --json file's .md) instead of aligned text.
std::string ParetoTable(const std::vector<RecipeRow>& rows, bool md) {
  const auto [mw, bw] = md ? std::pair{0, 0} : NameWidths(rows);  // width 0: as long as it is
  char b[512];
  std::snprintf(b, sizeof b, "%-*s %-*s weights MiB  bits/w      ppl      KL  top-1  frontier\n",
                mw, "method", bw, "bits");
  std::string s =
      md ? "| method | bits | weights MiB | bits/weight | ppl | KL | top-1 | frontier |\n"
           "|---|---|---|---|---|---|---|---|\n"
         : std::string(b);
  const char* fmt = md ? "| %-*s | %-*s | %.2f | %.2f | %.4f | %.4f | %.3f | %s |\n"
                       : "%-*s %-*s %11.2f %7.2f %8.4f %7.4f %6.3f  %s\n";
  std::vector<RecipeRow> frontier;
  for (const RecipeRow& r : ByCost(rows)) {
    std::snprintf(b, sizeof b, fmt, mw, r.method.c_str(), bw, r.bit_setting.Name().c_str(),
                  r.weight_bytes / 1048576.0, r.bits_per_weight, r.ppl, r.kld, r.top1,
                  r.pareto ? "*" : "");
    s += b;
    if (r.pareto) frontier.push_back(r);
  }
  s += md ? "\n" : "";
  s += "*: on the frontier (no row costing at most as much in weight bytes, activation bits and "
       "KV bits has a lower KL); what each frontier row buys over the one below it:\n";
  s += md ? "\n" : "";
  for (const RecipeRow& r : frontier) {
    const std::string line = WhatItBuys(r, frontier);
    if (!line.empty()) s += (md ? "- " : "  ") + line + "\n";
  }
  std::set<std::string> said;  // mixed precision: which layers, and why those (once a setting)
  for (const RecipeRow& r : rows) {
    if (r.mixed.empty() || !said.insert(r.bit_setting.Name()).second) continue;
    s += (md ? "- " : "  ") + r.bit_setting.Name() + " (every method): " + r.mixed + "\n";
  }
  return s;
}

nlohmann::json RowJson(const RecipeRow& r) {
  nlohmann::json settings = nlohmann::json::object();
  for (const auto& [k, v] : r.settings) settings[k] = v;
  return {{"method", r.method},
          {"bits", r.bit_setting.Name()},
          {"ppl", r.ppl},
          {"ppl_stderr", r.ppl_stderr},
          {"delta_ppl", r.delta_ppl},
          {"kld", r.kld},
          {"kld_p99", r.kld_p99},
          {"top1", r.top1},
          {"tokens", r.tokens},
          {"worst_input_ratio", r.worst_ratio},
          {"worst_input", r.worst_site},
          {"worst_token_ratio", r.worst_token_ratio},
          {"worst_token_input", r.worst_token_site},
          {"quantize_seconds", r.quantize_seconds},
          {"eval_seconds", r.eval_seconds},
          {"sink_aware", r.sink},
          {"weight_bytes", r.weight_bytes},
          {"bits_per_weight", r.bits_per_weight},
          {"pareto", r.pareto},
          {"act_bits", r.act_bits},
          {"mixed_precision", r.mixed},
          {"settings", settings},
          {"transforms", r.log}};
}

int RunCompare(Args& a) {
  CompareCliOptions o = ParseCompareOptions(a);
  SetNumThreads(o.threads);
  LoadedModel lm = LoadModel(o.model, o.tokenizer);
  o.windows.ctx = ResolveCtx(o.windows.ctx, lm.model.config);
  CheckCalibIsNotData(o.calib, o.data);
  const auto eval = MakeWindows(ReadTextFile(o.data), *lm.tokenizer, o.windows, o.data);
  WindowOptions cw = o.windows;
  cw.max_tokens = o.calib_tokens;
  const auto calib = MakeWindows(ReadTextFile(o.calib), *lm.tokenizer, cw, o.calib);
  // One progress line per recipe: "compare rotate-gptq: layer 3/16 ...".
  std::map<std::string, std::function<void(int, int)>> progress;
  const long tokens = TokenCount(eval);
  o.run.progress = [&](const std::string& method, int done, int total) {
    auto it = progress.find(method);
    if (it == progress.end()) {
      it = progress.emplace(method, StderrProgress("compare " + method, "layer", tokens)).first;
    }
    if (it->second) it->second(done, total);
  };
  const std::vector<RecipeRow> rows =
      o.pareto.empty() ? CompareRecipes(lm.model, calib, eval, o.run)
                       : CompareBitSettings(lm.model, calib, eval, o.run, o.pareto);

  long calib_tokens = 0;
  for (const Window& w : calib) calib_tokens += static_cast<long>(w.tokens.size());
  std::printf("model: %s\n", o.model.c_str());
  std::printf("data:  %s (%zu windows, ctx %d, %ld tokens scored)\n", o.data.c_str(), eval.size(),
              o.windows.ctx, rows.front().tokens);
  std::printf("calib: %s (%zu windows, %ld tokens)\n", o.calib.c_str(), calib.size(), calib_tokens);
  std::printf(
      "max/med: max |x| / median |x| at the worst linear input (after online rotations); "
      "tok m/m: the same within one token (what a per-token int4 scale sees); first %d "
      "windows\n",
      o.run.ratio_windows);
  if (o.pareto.empty()) {
    PrintTable(rows);
  } else {
    std::printf("%s", ParetoTable(rows, false).c_str());
  }
  if (!o.json.empty()) {
    nlohmann::json j = {{"model", o.model},
                        {"data", o.data},
                        {"calib", o.calib},
                        {"ctx", o.windows.ctx},
                        {"calib_tokens", calib_tokens},
                        {"rows", nlohmann::json::array()}};
    for (const RecipeRow& r : rows) j["rows"].push_back(RowJson(r));
    const std::string md = std::filesystem::path(o.json).replace_extension(".md").string();
    WriteFilesAtomic(
        {{o.json, ReportJson(j)},
         {md, "Model `" + o.model + "`, eval `" + o.data + "`, calib `" + o.calib + "`\n\n" +
                  (o.pareto.empty() ? RecipeTableMarkdown(rows) : ParetoTable(rows, true))}});
  }
  return 0;
}

const bool kRegistered = RegisterCommand(
    {"compare", "every quantization recipe against the float model, one table",
     std::string("--model PATH [--tokenizer PATH] --calib FILE --data FILE\n"
                 "  [--methods ") +
         kDefaultMethods + ",rotate+kv-rotate,rotate+sink-aware,...]\n" +
         "  (every method at --w-bits 4 --a-bits 4 unless the flags below say otherwise)\n" +
         kQuantFlagsUsage +
         "  [--ctx N] [--max-tokens N] [--calib-tokens N] [--ratio-windows 4] [--json FILE]\n"
         "  [--threads N] [--fake-quant (W4A4 linears in float instead of the integer kernels)]\n"
         "  [--pareto [--pareto-bits " +
         kParetoBits +
         "]] (every method at every bit setting: "
         "size against quality,\n   methods " +
         kParetoMethods + " unless --methods says)",
     RunCompare});

}  // namespace
}  // namespace sq
