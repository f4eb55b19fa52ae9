#include "cli/quant_flags.h"

#include <algorithm>
#include <string>

#include "core/error.h"

namespace sq {

QuantConfig ParseQuantConfig(Args& a) {
  QuantConfig c;
  c.w_bits = a.IntOneOf("w-bits", 16, kBitsChoices);
  c.a_bits = a.IntOneOf("a-bits", 16, kBitsChoices);
  c.kv_bits = a.IntOneOf("kv-bits", 16, kBitsChoices);
  c.w_group = a.Int("w-group", 0, 0, 1 << 20);
  c.kv_group = a.Int("kv-group", 0, 0, 1 << 20);
  c.a_clip = static_cast<float>(a.Float("a-clip", 1.0, 1e-6, 1.0));
  c.w_sym = !a.Flag("w-asym");
  c.clip_search = !a.Flag("no-clip-search");
  c.act_order = a.Flag("act-order");
  c.gptq_block = a.Int("gptq-block", c.gptq_block, 1, 1 << 16);
  c.gptq_damp = a.Float("gptq-damp", c.gptq_damp, 1e-9, 1e3);
  if (a.Has("keep-float")) c.keep_float = ParseLinearRoles(a.Str("keep-float", ""));
  c.seed = static_cast<uint64_t>(SeedFlag(a));
  return c;
}

int ResolveCtx(int ctx, const ModelConfig& c) {
  if (ctx == 0) return std::min(c.max_position, 512);
  Check(ctx <= c.max_position, "--ctx " + std::to_string(ctx) +
                                   " exceeds the model's max_position_embeddings " +
                                   std::to_string(c.max_position));
  return ctx;
}

}  // namespace sq
