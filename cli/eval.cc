// sinkquant eval: perplexity of a model over a text file (llama.cpp's `perplexity`).
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "calib/dataset.h"
#include "calib/eval.h"
#include "cli/command.h"
#include "cli/output.h"

#include "core/error.h"
#include "core/threads.h"
#include "model/loader.h"

namespace sq {
namespace {

struct EvalOptions {
  std::string model, tokenizer, data, json;
  WindowOptions windows;
  int threads = 0;
};

EvalOptions ParseEvalOptions(Args& a) {
  EvalOptions o;
  o.model = a.Required("model");
  o.tokenizer = a.Str("tokenizer", "");
  o.data = a.Required("data");
  o.windows.ctx = a.Int("ctx", 0);
  o.windows.max_tokens = a.Int("max-tokens", 0);
  o.json = a.Str("json", "");
  o.threads = a.Int("threads", 0);
  a.Finish();
  return o;
}

int RunEval(Args& a) {
  EvalOptions o = ParseEvalOptions(a);
  SetNumThreads(o.threads);
  LoadedModel lm = LoadModel(o.model, o.tokenizer);
  if (o.windows.ctx == 0) o.windows.ctx = std::min(lm.model.config.max_position, 512);
  Check(o.windows.ctx <= lm.model.config.max_position,
        "--ctx " + std::to_string(o.windows.ctx) + " exceeds the model's max_position_embeddings " +
            std::to_string(lm.model.config.max_position));
  const std::string text = ReadTextFile(o.data);
  const auto windows = MakeWindows(text, *lm.tokenizer, o.windows, o.data);

  const PplResult r = EvaluatePerplexity(lm.model, windows, nullptr, {}, StderrProgress("eval"));
  std::printf("model:  %s\n", o.model.c_str());
  std::printf("data:   %s (%zu windows, ctx %d)\n", o.data.c_str(), windows.size(), o.windows.ctx);
  std::printf("tokens scored: %ld\n", r.tokens);
  std::printf("mean NLL: %.6f nats\n", r.nll);
  std::printf("PPL = %.4f +/- %.4f\n", r.ppl, r.ppl_stderr);
  std::printf("speed: %.1f tokens/s (%.2f s, %d threads)\n", r.tokens_per_s, r.seconds, NumThreads());
  if (!o.json.empty()) {
    nlohmann::json j = {{"ppl", r.ppl},         {"ppl_stderr", r.ppl_stderr}, {"nll", r.nll},
                        {"tokens", r.tokens},   {"tokens_per_s", r.tokens_per_s},
                        {"model", o.model},     {"data", o.data},  {"ctx", o.windows.ctx}};
    WriteFileAtomic(o.json, j.dump(2) + "\n");
  }
  return 0;
}

const bool kRegistered = RegisterCommand(
    {"eval", "perplexity of a model on a text file",
     "--model PATH [--tokenizer PATH] --data FILE [--ctx N] [--max-tokens N] [--json FILE] "
     "[--threads N]",
     RunEval});

}  // namespace
}  // namespace sq
