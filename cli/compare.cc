// sinkquant compare: every recipe against the float model on the same text, one table.
#include <cstdio>
#include <map>
#include <filesystem>
#include <nlohmann/json.hpp>

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

struct CompareCliOptions {
  std::string model, tokenizer, calib, data, json;
  WindowOptions windows;
  long calib_tokens = 0;
  int threads = 0;
  CompareRecipesOptions run;
};

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
  o.json = a.Str("json", "");
  o.windows.ctx = CtxFlag(a);
  o.windows.max_tokens = TokensFlag(a, "max-tokens");
  o.calib_tokens = TokensFlag(a, "calib-tokens");
  o.threads = ThreadsFlag(a);
  // Empty items are skipped ("fp,,rtn" runs fp and rtn).
  o.run.methods = SplitList(a.Str("methods", kDefaultMethods), ',');
  std::erase(o.run.methods, "");
  o.run.ratio_windows = a.Int("ratio-windows", 4, 0, 1 << 20);
  o.run.integer_kernels = !a.Flag("fake-quant");
  o.run.base = ParseQuantConfig(a, W4A4Defaults());
  a.Finish();
  return o;
}

void PrintTable(const std::vector<RecipeRow>& rows) {
  std::printf("%-20s %-10s %8s %8s %7s %6s %8s %-18s %8s %-18s %6s\n", "method", "bits", "ppl",
              "dppl", "KL", "top-1", "max/med", "(worst input)", "tok m/m", "(worst input)",
              "time s");
  for (const RecipeRow& r : rows) {
    std::printf("%-20s %-10s %8.4f %+8.4f %7.4f %6.3f %8.1f %-18s %8.1f %-18s %6.1f\n",
                r.method.c_str(), r.bits.c_str(), r.ppl, r.delta_ppl, r.kld, r.top1,
                r.worst_ratio, r.worst_site.c_str(), r.worst_token_ratio,
                r.worst_token_site.c_str(), r.quantize_seconds + r.eval_seconds);
  }
  for (const RecipeRow& r : rows) {
    for (const std::string& line : r.log) std::printf("  %s: %s\n", r.method.c_str(), line.c_str());
    if (!r.sink.empty()) std::printf("  %s: %s\n", r.method.c_str(), r.sink.c_str());
  }
}

nlohmann::json RowJson(const RecipeRow& r) {
  nlohmann::json settings = nlohmann::json::object();
  for (const auto& [k, v] : r.settings) settings[k] = v;
  return {{"method", r.method},           {"bits", r.bits},
          {"ppl", r.ppl},                 {"ppl_stderr", r.ppl_stderr},
          {"delta_ppl", r.delta_ppl},     {"kld", r.kld},
          {"kld_p99", r.kld_p99},         {"top1", r.top1},
          {"tokens", r.tokens},           {"worst_input_ratio", r.worst_ratio},
          {"worst_input", r.worst_site},  {"worst_token_ratio", r.worst_token_ratio},
          {"worst_token_input", r.worst_token_site},  {"quantize_seconds", r.quantize_seconds},
          {"eval_seconds", r.eval_seconds}, {"sink_aware", r.sink},
          {"settings", settings},         {"transforms", r.log}};
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
  const std::vector<RecipeRow> rows = CompareRecipes(lm.model, calib, eval, o.run);

  long calib_tokens = 0;
  for (const Window& w : calib) calib_tokens += static_cast<long>(w.tokens.size());
  std::printf("model: %s\n", o.model.c_str());
  std::printf("data:  %s (%zu windows, ctx %d, %ld tokens scored)\n", o.data.c_str(), eval.size(),
              o.windows.ctx, rows.front().tokens);
  std::printf("calib: %s (%zu windows, %ld tokens)\n", o.calib.c_str(), calib.size(), calib_tokens);
  std::printf("max/med: max |x| / median |x| at the worst linear input (after online rotations); "
              "tok m/m: the same within one token (what a per-token int4 scale sees); first %d "
              "windows\n", o.run.ratio_windows);
  PrintTable(rows);
  if (!o.json.empty()) {
    nlohmann::json j = {{"model", o.model}, {"data", o.data}, {"calib", o.calib},
                        {"ctx", o.windows.ctx}, {"calib_tokens", calib_tokens},
                        {"rows", nlohmann::json::array()}};
    for (const RecipeRow& r : rows) j["rows"].push_back(RowJson(r));
    const std::string md = std::filesystem::path(o.json).replace_extension(".md").string();
    WriteFilesAtomic({{o.json, ReportJson(j)},
                      {md, "Model `" + o.model + "`, eval `" + o.data + "`, calib `" + o.calib +
                               "`\n\n" + RecipeTableMarkdown(rows)}});
  }
  return 0;
}

const bool kRegistered = RegisterCommand(
    {"compare", "every quantization recipe against the float model, one table",
     std::string("--model PATH [--tokenizer PATH] --calib FILE --data FILE\n"
                 "  [--methods ") + kDefaultMethods + ",rotate+kv-rotate,rotate+sink-aware,...]\n" +
         "  (every method at --w-bits 4 --a-bits 4 unless the flags below say otherwise)\n" +
         kQuantFlagsUsage +
         "  [--ctx N] [--max-tokens N] [--calib-tokens N] [--ratio-windows 4] [--json FILE]\n"
         "  [--threads N] [--fake-quant (W4A4 linears in float instead of the integer kernels)]",
     RunCompare});

}  // namespace
}  // namespace sq
