// sinkquant quantize: apply a recipe and export the result as ONNX (QDQ or MatMulNBits): a
// deployable folder (onnx/model.onnx, config, tokenizer, quantization.json) or a bare .onnx
// graph, with the reference logits scripts/onnx/verify.mjs checks ONNX Runtime against.
#include <cstdio>
#include <filesystem>
#include <optional>

#include "calib/dataset.h"
#include "calib/quant_error.h"
#include "cli/command.h"
#include "cli/output.h"
#include "cli/quant_flags.h"
#include "core/dist.h"
#include "core/error.h"
#include "core/threads.h"
#include "model/loader.h"
#include "onnx/export.h"
#include "onnx/export_folder.h"
#include "quant/recipe.h"
#include "quant/recipe_pipeline.h"

namespace sq {
namespace {

struct QuantizeOptions {
  std::string model, tokenizer, out;
  QuantConfig config;
  MethodFlags recipe;  // recipe.quant false: float export (--w-bits 16 and nothing else)
  OnnxExportOptions onnx;
  bool folder = false;  // --out names a folder (not a .onnx file)
  std::string logits_out, data;  // reference logits for the verifier
  WindowOptions windows;
  int threads = 0;
};

QuantizeOptions ParseQuantizeOptions(Args& a) {
  QuantizeOptions o;
  o.model = a.Required("model");
  o.tokenizer = a.Str("tokenizer", "");
  o.out = a.Required("out");
  // A .onnx file's folder must already exist; a new export folder is checked below.
  if (std::filesystem::path(o.out).extension() == ".onnx") a.OutputFile("out", true);
  o.config = ParseQuantConfig(a, FloatDefaults());
  o.recipe = ParseMethodFlags(a, o.config);
  o.onnx.format = a.OneOf<OnnxFormat>(
      "onnx-format", "qdq", {{"qdq", OnnxFormat::kQdq}, {"matmulnbits", OnnxFormat::kMatMulNBits}});
  o.onnx.layout = a.OneOf<OnnxLayout>(
      "layout", "decoder", {{"decoder", OnnxLayout::kDecoder}, {"scoring", OnnxLayout::kScoring}});
  const int threshold = a.Int("external-threshold", 1024, 0, kIntMax);
  o.onnx.external_threshold = static_cast<size_t>(threshold);
  o.logits_out = a.OutputFile("logits-out");
  o.data = a.Str("data", "");
  o.windows.ctx = CtxFlag(a);
  o.windows.max_tokens = TokensFlag(a, "max-tokens");
  o.threads = ThreadsFlag(a);
  a.Finish();
  Check(o.logits_out.empty() || !o.data.empty(),
        "--logits-out needs --data (the reference logits are computed on --data)");
  o.folder = std::filesystem::path(o.out).extension() != ".onnx";
  if (o.folder) {
    Check(o.onnx.layout == OnnxLayout::kDecoder,
          "--layout scoring writes a bare graph: --out must name a .onnx file, got '" + o.out + "'");
    CheckNewExportFolder(o.out);
  }
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
  std::printf(
      "linears: %d with integer weights, %d float; %d with per-token activation "
      "fake-quant",
      r.quantized_linears, r.float_linears, r.act_quantized_linears);
  if (r.outlier_sides > 0) std::printf("; %d with an outlier-channel side", r.outlier_sides);
  std::printf("\n");
  const double ratio = r.linear_bytes > 0 ? double(r.linear_f32_bytes) / r.linear_bytes : 0;
  std::printf("linear weights: %.3f MiB as written vs %.3f MiB in f32 (%.2fx smaller), "
              "%.3f MiB in the checkpoint's dtype\n",
              MiB(r.linear_bytes), MiB(r.linear_f32_bytes), ratio, MiB(r.linear_source_bytes));
  std::printf("other tensors (embeddings, norms, gates, RoPE tables, rotations, biases): %.3f MiB\n",
              MiB(r.other_bytes));
}

// quantization.json: how the export was made and, with --data, what it measures against the
// float model (sinkquant's simulation of exactly the exported model).
nlohmann::ordered_json QuantizationJson(const QuantizeOptions& o, const Recipe* recipe,
                                        const std::string& kv, const CompareResult* cmp) {
  nlohmann::ordered_json j = {{"producer", "sinkquant quantize"},
                              {"source_model", o.model},
                              {"onnx_format", o.onnx.format == OnnxFormat::kQdq ? "qdq" : "matmulnbits"},
                              {"layout", "decoder"}};
  nlohmann::ordered_json settings = nlohmann::ordered_json::object();
  if (recipe) {
    for (const auto& [k, v] : recipe->Settings()) settings[k] = v;
  }
  j["recipe"] = recipe ? nlohmann::ordered_json(recipe->name) : nlohmann::ordered_json("none (float)");
  j["settings"] = settings;
  j["kv_cache"] = kv;
  if (o.onnx.format == OnnxFormat::kQdq) {
    // Without it ORT fuses DequantizeLinear(int4) + MatMul into MatMulNBits with int8
    // activations: other numbers than these (MatMulNBits exports need nothing).
    j["onnxruntime_session_config"] = {{"session.qdq_matmulnbits_accuracy_level", "0"}};
  }
  if (cmp) {
    j["measured"] = {{"data", o.data},
                     {"ctx", o.windows.ctx},
                     {"tokens", cmp->tokens},
                     {"ppl_float", cmp->fp.ppl},
                     {"ppl_exported", cmp->quant.ppl},  // sinkquant's run of the exported model
                     {"kl_mean", cmp->kld_mean},
                     {"kl_p99", cmp->kld_p99},
                     {"top1_agreement", cmp->top1}};
  }
  return j;
}

// The reference logits are written after the export; if they fail, the export goes too, so a
// failed run leaves no output (each output alone is already all-or-nothing). The folder is new
// (an existing one is refused), and a bare model.onnx was replaced by this run.
void RemoveExport(const QuantizeOptions& o, const OnnxFileSizes& files) {
  std::error_code ec;
  if (o.folder) {
    std::filesystem::remove_all(o.out, ec);
    return;
  }
  std::filesystem::remove(files.model_path, ec);
  if (!files.data_path.empty()) std::filesystem::remove(files.data_path, ec);
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

  std::vector<Window> windows;
  if (!o.data.empty()) windows = Windows(o.data, *lm.tokenizer, o.windows);
  std::optional<CompareResult> cmp;  // float vs exported on --data, for quantization.json
  Model exported;
  std::optional<Recipe> recipe_used;
  std::string kv = "float";
  if (o.recipe.quant) {
    const Recipe asked = MakeRecipe(o.recipe.method, o.config);
    std::vector<Window> calib;
    if (!o.recipe.calib.empty()) {
      WindowOptions wo = o.windows;
      wo.max_tokens = o.recipe.calib_tokens;
      calib = Windows(o.recipe.calib, *lm.tokenizer, wo);
    }
    Check(!asked.config.gptq || !calib.empty(),
          "--method " + asked.name + " needs calibration text: --calib FILE");
    // One layer at a time (quant/recipe_pipeline.h), keeping only the packed layers; with
    // --data (a folder's quantization.json) the float and quantized models are measured in
    // the same layer loop.
    RecipePipeline pipe(lm.model, asked, calib, /*integer_kernels=*/false);
    const Recipe& recipe = pipe.recipe();  // what auto chose, or the one asked for
    recipe_used = recipe;
    pipe.KeepQuantizedLayers();
    if (o.folder && !windows.empty()) {
      CompareOptions co;
      co.sqnr_windows = 0;
      co.hooks = pipe.Hooks();
      co.progress = StderrProgress("quantize+measure", "layer", TokenCount(windows));
      cmp = EvalQuantized(lm.model, pipe.quantized(), windows, co);
    } else {
      pipe.BuildAll(StderrProgress("quantize", "layer", TokenCount(calib)));
    }
    std::printf("recipe:");
    for (const auto& [k, v] : recipe.Settings()) std::printf(" %s=%s", k.c_str(), v.c_str());
    std::printf("\n");
    for (const std::string& line : pipe.log()) std::printf("  transform: %s\n", line.c_str());
    const QuantizeReport rep = pipe.report();
    std::printf("kv cache: %s\n", rep.kv.c_str());
    kv = rep.kv;
    std::printf("quantized in %.2f s\n", rep.seconds);
    exported = pipe.quantized();
  } else {
    std::printf("recipe: none (float export, --w-bits 16)\n");
    exported = lm.model;
    if (o.folder && !windows.empty()) {
      CompareOptions co;
      co.sqnr_windows = 0;
      cmp = EvalQuantized(lm.model, exported, windows, co);
    }
  }

  if (cmp) {
    std::printf("measured on %s: ppl float %.6f, exported %.6f, KL %.6f, top-1 %.4f\n",
                o.data.c_str(), cmp->fp.ppl, cmp->quant.ppl, cmp->kld_mean, cmp->top1);
  }

  // Every rank now holds the same quantized model; the export (and the reference logits, run
  // on every window by one process) is rank 0's alone.
  if (dist::Rank() != 0) return 0;
  OnnxExportReport r;
  if (o.folder) {
    OnnxFolderContents contents;
    contents.tokenizer_path = lm.tokenizer_path;
    contents.quantization = QuantizationJson(o, recipe_used ? &*recipe_used : nullptr, kv,
                                             cmp ? &*cmp : nullptr);
    r = ExportOnnxFolder(exported, o.out, o.onnx, contents);
    std::printf("folder: %s (config.json, generation_config.json, tokenizer.json, "
                "tokenizer_config.json, quantization.json, onnx/)\n", o.out.c_str());
  } else {
    r = ExportOnnx(exported, o.out, o.onnx);
  }
  std::printf("format: %s, layout %s (opset 21, IR 10%s)\n",
              o.onnx.format == OnnxFormat::kQdq ? "qdq" : "matmulnbits",
              o.onnx.layout == OnnxLayout::kDecoder ? "decoder" : "scoring",
              o.onnx.format == OnnxFormat::kQdq ? "" : ", com.microsoft opset 1");
  PrintSizes(r);

  if (!o.logits_out.empty()) {
    PplResult p;
    try {
      p = WriteReferenceLogits(exported, windows, o.logits_out);
    } catch (...) {
      RemoveExport(o, r.files);
      throw;
    }
    std::printf("reference: %s (+ .f32): %zu windows, ctx %d, %ld tokens scored\n",
                o.logits_out.c_str(), windows.size(), o.windows.ctx, p.tokens);
    std::printf("sinkquant PPL = %.6f (the exported model, simulated)\n", p.ppl);
  }
  return 0;
}

const bool kRegistered = RegisterCommand(
    {"quantize", "apply a recipe and export the model as ONNX (QDQ or MatMulNBits)",
     std::string(
         "--model PATH [--tokenizer PATH] --out DIR|model.onnx [--layout decoder|scoring]\n"
         "  [--onnx-format qdq|matmulnbits]\n"
         "  --out DIR writes a new folder a loader runs offline (onnx/model.onnx + model.onnx_data,\n"
         "  config.json, generation_config.json, tokenizer.json, tokenizer_config.json,\n"
         "  quantization.json); --out X.onnx writes the graph alone. --layout decoder (default):\n"
         "  Optimum's KV-cache I/O; scoring: input_ids -> logits only.\n"
         "  [--external-threshold BYTES (tensors above go to model.onnx.data; default 1024)]\n"
         "  [--method rtn|gptq|smooth|rotate|rotate-gptq|smooth-rotate[+kv-rotate]] [--gptq]\n"
         "  [--calib FILE]\n"
         "  [--calib-tokens N]\n") +
         kQuantFlagsUsage +
         "  [--data FILE [--ctx N] [--max-tokens N] [--logits-out REF.json]] [--threads N]\n"
         "  --data measures ppl/KL of the exported model vs float (into quantization.json);\n"
         "  --logits-out writes the token windows of --data and the exported model's logits\n"
         "  (REF.json + REF.json.f32) for scripts/onnx/verify.mjs.",
     RunQuantize});

}  // namespace
}  // namespace sq
