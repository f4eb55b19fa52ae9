// Random-weight models: for tests that plant known extremes, and for benchmarks with real
// checkpoint shapes. Deterministic for a given seed.
#pragma once

#include <cstdint>

#include "core/model_weights.h"

namespace sq {

// Every tensor the config needs, owned F32: linears ~ N(0, scale^2 / in_features) so
// activations keep unit scale, norms 1, embeddings N(0, 1), GatedNorm gates small.
ModelWeights RandomWeights(const ModelConfig& c, uint64_t seed);


}  // namespace sq
