// Arithmetic cost of a prefill, for benchmarks that report GFLOP/s.
#pragma once

#include "core/model_config.h"

namespace sq {

// FLOPs (multiply-add = 2) of one forward pass over T tokens: every linear, the attention
// score and value products (the causal half, as the useful work), and the lm_head.
double PrefillFlops(const ModelConfig& c, int T);

}  // namespace sq
