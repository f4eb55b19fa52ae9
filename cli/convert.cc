// sinkquant convert: a llama2.c checkpoint + tokenizer -> a Hugging Face Llama folder.
#include <cstdio>

#include "cli/command.h"
#include "formats/llama2c.h"

namespace sq {
namespace {

int RunConvert(Args& a) {
  const std::string model = a.Required("model");
  const std::string tokenizer = a.Str("tokenizer", "");
  const std::string out = a.Required("out");
  const bool force = a.Flag("force");
  a.Finish();
  const ConvertSummary s = ConvertLlama2cToHf(model, tokenizer, out, force);
  const ModelConfig& c = s.config;
  std::printf("wrote %s: LlamaForCausalLM, hidden %d, %d layers, %d heads (%d kv), vocab %d, "
              "%s embeddings; q/k rows permuted to rotate_half; tokenizer from %s\n",
              out.c_str(), c.hidden, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab,
              c.tie_embeddings ? "tied" : "untied", s.tokenizer_bin.c_str());
  return 0;
}

const bool kRegistered = RegisterCommand(
    {"convert", "llama2.c checkpoint (.bin + tokenizer .bin) -> Hugging Face folder",
     "--model X.bin [--tokenizer tok.bin] --out DIR [--force]\n"
     "  --tokenizer  llama2.c tokenizer (default: tokenizer.bin or tok<V>.bin beside --model)\n"
     "  --force      replace --out when it exists and is not empty",
     RunConvert});

}  // namespace
}  // namespace sq
