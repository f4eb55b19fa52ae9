// sinkquant quantize: apply a recipe and export the result as ONNX (QDQ or MatMulNBits), with
// the reference logits scripts/onnx/verify.mjs checks ONNX Runtime against.
#include <cstdio>
#include <filesystem>

#include "calib/dataset.h"
#include "cli/command.h"
#include "cli/quant_flags.h"
#include "cli/output.h"
#include "core/error.h"
#include "core/threads.h"
#include "model/loader.h"
#include "quant/onnx_export.h"
#include "quant/recipe.h"

namespace sq {
namespace {

struct QuantizeOptions {
  std::string model, tokenizer, out, calib, method;
  long calib_tokens = 0;
  QuantConfig config;
  bool quant = false;  // false: float export (--w-bits 16 and nothing else)
  OnnxExportOptions onnx;
  std::string logits_out, data;  // reference logits for the verifier
  WindowOptions windows;
  int threads = 0;
};

// The quantization flags are those of `sinkquant eval`, so a number measured there exports
// with the same command line.
void ParseQuantFlags(Args& a, QuantizeOptions& o) {
  o.config = ParseQuantConfig(a);
  const QuantConfig& c = o.config;
  o.method = a.Str("method", "");
  o.calib = a.Str("calib", "");
  o.calib_tokens = TokensFlag(a, "calib-tokens");
  o.quant = c.w_bits < 16 || c.a_bits < 16 || c.kv_bits < 16 || !o.method.empty();
  if (o.quant && o.method.empty()) o.method = "rtn";
}

QuantizeOptions ParseQuantizeOptions(Args& a) {
  QuantizeOptions o;
  o.model = a.Required("model");
  o.tokenizer = a.Str("tokenizer", "");
  o.out = a.Required("out");
  ParseQuantFlags(a, o);
  o.onnx.format = ParseOnnxFormat(a.Str("onnx-format", "qdq"));
  const int threshold = a.Int("external-threshold", 1024, 0, kIntMax);
  Check(threshold >= 0, "--external-threshold must be >= 0, got " + std::to_string(threshold));
  o.onnx.external_threshold = static_cast<size_t>(threshold);
  o.logits_out = a.Str("logits-out", "");
  o.data = a.Str("data", "");
  o.windows.ctx = CtxFlag(a);
  o.windows.max_tokens = TokensFlag(a, "max-tokens");
  o.threads = ThreadsFlag(a);
  a.Finish();
  Check(o.logits_out.empty() == o.data.empty(),
        "--logits-out and --data go together (the reference logits are computed on --data)");
  Check(std::filesystem::path(o.out).extension() == ".onnx",
        "--out must name a .onnx file, got '" + o.out + "'");
  return o;
}

std::vector<Window> Windows(const std::string& path, const Tokenizer& tok, WindowOptions wo) {
  return MakeWindows(ReadTextFile(path), tok, wo, path);
}

double MiB(int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

void PrintSizes(const OnnxExportReport& r) {
  std::printf("onnx:   %s (%.3f MiB)", r.files.model_path.c_str(), MiB(r.files.model_bytes));
  if (!r.files.data_path.empty()) {
    std::printf(" + %s (%.3f MiB)", r.files.data_path.c_str(), MiB(r.files.data_bytes));
  }
  std::printf("\n");
  std::printf("linears: %d with integer weights, %d float; %d with per-token activation "
              "fake-quant\n", r.quantized_linears, r.float_linears, r.act_quantized_linears);
  const double ratio = r.linear_bytes > 0 ? double(r.linear_f32_bytes) / r.linear_bytes : 0;
  std::printf("linear weights: %.3f MiB as written vs %.3f MiB in f32 (%.2fx smaller), "
              "%.3f MiB in the checkpoint's dtype\n",
              MiB(r.linear_bytes), MiB(r.linear_f32_bytes), ratio, MiB(r.linear_source_bytes));
  std::printf("other tensors (embeddings, norms, gates, RoPE tables, rotations, biases): %.3f MiB\n",
              MiB(r.other_bytes));
}

int RunQuantize(Args& a) {
  QuantizeOptions o = ParseQuantizeOptions(a);
  SetNumThreads(o.threads);
  LoadedModel lm = LoadModel(o.model, o.tokenizer);
  o.windows.ctx = ResolveCtx(o.windows.ctx, lm.model.config);
  // The export writes every tensor: a NaN or Inf in one (a norm, the embedding, a linear kept
  // float) would be exported silently.
  CheckFiniteTensors(lm.model.config, lm.model.weights, "refusing to quantize or export");
  std::printf("model:  %s\n", o.model.c_str());

  Model exported;
  if (o.quant) {
    const Recipe recipe = MakeRecipe(o.method, o.config);
    std::vector<Window> calib;
    if (!o.calib.empty()) {
      WindowOptions wo = o.windows;
      wo.max_tokens = o.calib_tokens;
      calib = Windows(o.calib, *lm.tokenizer, wo);
    }
    Check(!recipe.config.gptq || !calib.empty(),
          "--method " + recipe.name + " needs calibration text: --calib FILE");
    RecipeResult rr = ApplyRecipe(lm.model, recipe, calib, StderrProgress("quantize"));
    std::printf("recipe:");
    for (const auto& [k, v] : recipe.Settings()) std::printf(" %s=%s", k.c_str(), v.c_str());
    std::printf("\n");
    for (const std::string& line : rr.log) std::printf("  transform: %s\n", line.c_str());
    std::printf("kv cache: %s\n", rr.report.kv.c_str());
    std::printf("quantized in %.2f s\n", rr.report.seconds);
    exported = std::move(rr.quantized);
  } else {
    std::printf("recipe: none (float export, --w-bits 16)\n");
    exported = lm.model;
  }

  const OnnxExportReport r = ExportOnnx(exported, o.out, o.onnx);
  std::printf("format: %s (opset 21, IR 10%s)\n",
              o.onnx.format == OnnxFormat::kQdq ? "qdq" : "matmulnbits",
              o.onnx.format == OnnxFormat::kQdq ? "" : ", com.microsoft opset 1");
  PrintSizes(r);

  if (!o.logits_out.empty()) {
    const auto windows = Windows(o.data, *lm.tokenizer, o.windows);
    const PplResult p = WriteReferenceLogits(exported, windows, o.logits_out);
    std::printf("reference: %s (+ .f32): %zu windows, ctx %d, %ld tokens scored\n",
                o.logits_out.c_str(), windows.size(), o.windows.ctx, p.tokens);
    std::printf("sinkquant PPL = %.6f (the exported model, simulated)\n", p.ppl);
  }
  return 0;
}

const bool kRegistered = RegisterCommand(
    {"quantize", "apply a recipe and export the model as ONNX (QDQ or MatMulNBits)",
     "--model PATH [--tokenizer PATH] --out model.onnx [--onnx-format qdq|matmulnbits]\n"
     "  [--external-threshold BYTES (tensors above go to model.onnx.data; default 1024)]\n"
     "  [--method rtn|gptq|...] [--calib FILE] [--calib-tokens N] [--w-bits 4|8|16]\n"
     "  [--w-group G (0 = per channel)] [--w-asym] [--no-clip-search] [--act-order]\n"
     "  [--gptq-block N] [--gptq-damp F] [--a-bits 4|8|16] [--a-clip R] [--kv-bits 4|8|16]\n"
     "  [--kv-group G] [--keep-float LIST (default lm_head; 'none')] [--seed N]\n"
     "  [--logits-out REF.json --data FILE [--ctx N] [--max-tokens N]] [--threads N]\n"
     "  --logits-out writes the token windows of --data and the exported model's logits\n"
     "  (REF.json + REF.json.f32) for scripts/onnx/verify.mjs.",
     RunQuantize});

}  // namespace
}  // namespace sq
