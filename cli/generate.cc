// sinkquant generate: greedy decoding, to see that a checkpoint loads and speaks.
#include <cstdio>

#include "cli/command.h"
#include "core/error.h"
#include "core/memory.h"
#include "core/threads.h"
#include "model/loader.h"

namespace sq {
namespace {

int RunGenerate(Args& a) {
  const std::string model = a.Required("model");
  const std::string tokenizer = a.Str("tokenizer", "");
  const std::string prompt = a.Str("prompt", "");
  const int steps = a.Int("steps", 64, 1, 1 << 20);
  SetNumThreads(ThreadsFlag(a));
  SetMatmulPrecision(MatmulPrecisionFlag(a));
  a.Finish();
  KeepFreedHeapMemory();

  LoadedModel lm = LoadModel(model, tokenizer);
  std::vector<int> ids = lm.tokenizer->Encode(prompt, /*add_special=*/true);
  if (ids.empty() || (lm.tokenizer->bos_id() >= 0 && ids.front() != lm.tokenizer->bos_id())) {
    Check(lm.tokenizer->bos_id() >= 0 || !ids.empty(),
          "--prompt is empty and the tokenizer has no BOS token to start from");
    if (lm.tokenizer->bos_id() >= 0) ids.insert(ids.begin(), lm.tokenizer->bos_id());
  }
  const size_t prompt_len = ids.size();
  const int limit = lm.model.config.max_position;
  Check(static_cast<int>(prompt_len) <= limit,
        "--prompt is " + std::to_string(prompt_len) + " tokens, past max_position_embeddings " +
            std::to_string(limit));
  // No KV cache: each step re-runs the prefill. Fine for the small models this is meant for.
  for (int s = 0; s < steps && static_cast<int>(ids.size()) < limit; ++s) {
    const Mat logits = Forward(lm.model, ids);
    // argmax over NaN is arbitrary: a broken checkpoint would "speak" garbage silently.
    Check(logits.row(logits.rows() - 1).allFinite(),
          "NaN or Inf in the logits at position " + std::to_string(ids.size() - 1) +
              " (a non-finite weight? `sinkquant eval` names the first layer where it appears)");
    Eigen::Index next;
    logits.row(logits.rows() - 1).maxCoeff(&next);
    if (next == lm.tokenizer->eos_id() || next == lm.tokenizer->bos_id()) break;
    ids.push_back(static_cast<int>(next));
  }
  std::printf("%s\n", lm.tokenizer->Decode(ids, /*skip_special=*/true).c_str());
  std::fflush(stdout);  // the text first, then the counts on stderr
  std::fprintf(stderr, "[%zu prompt tokens, %zu generated]\n", prompt_len, ids.size() - prompt_len);
  return 0;
}

const bool kRegistered =
    RegisterCommand({"generate", "greedy text generation (a smoke test for a checkpoint)",
                     "--model PATH [--tokenizer PATH] [--prompt TEXT] [--steps N] [--threads N]\n"
                     "  [--matmul-precision f32|bf16]",
                     RunGenerate});

}  // namespace
}  // namespace sq
