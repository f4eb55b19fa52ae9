// Flags shared by the commands that quantize (`eval`, `quantize`), so a number measured with
// `eval` exports with the same command line.
#pragma once

#include <vector>

#include "cli/args.h"
#include "core/model_config.h"
#include "quant/quantize_model.h"

namespace sq {

// The bit widths a quantizer supports; 16 means float (anything else is refused, never
// silently run in float).
inline const std::vector<int> kBitsChoices = {2, 3, 4, 5, 6, 7, 8, 16};

// --w-bits --a-bits --kv-bits --w-group --kv-group --a-clip --w-asym --no-clip-search
// --act-order --gptq-block --gptq-damp --keep-float --seed (bits default to 16: float).
QuantConfig ParseQuantConfig(Args& a);

// --ctx 0 means min(max_position_embeddings, 512); a larger --ctx than the model allows is refused.
int ResolveCtx(int ctx, const ModelConfig& c);

}  // namespace sq
