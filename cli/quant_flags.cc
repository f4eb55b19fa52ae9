#include "cli/quant_flags.h"

#include <algorithm>
#include <string>

#include "core/error.h"

namespace sq {

QuantConfig ParseQuantConfig(Args& a) {
  QuantConfig c;
  c.w_bits = a.Int("w-bits", 16);
  c.a_bits = a.Int("a-bits", 16);
  c.kv_bits = a.Int("kv-bits", 16);
  c.w_group = a.Int("w-group", 0);
  c.kv_group = a.Int("kv-group", 0);
  c.a_clip = static_cast<float>(a.Float("a-clip", 1.0));
  c.w_sym = !a.Flag("w-asym");
  c.clip_search = !a.Flag("no-clip-search");
  c.act_order = a.Flag("act-order");
  c.gptq_block = a.Int("gptq-block", c.gptq_block);
  c.gptq_damp = a.Float("gptq-damp", c.gptq_damp);
  if (a.Has("keep-float")) c.keep_float = ParseLinearRoles(a.Str("keep-float", ""));
  c.seed = static_cast<uint64_t>(a.Int("seed", 0));
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
