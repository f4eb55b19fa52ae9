// Random-weight models: for tests that plant known extremes, and for benchmarks with real
// checkpoint shapes. Deterministic for a given seed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/model_weights.h"

namespace sq {

// Every tensor the config needs, owned F32, at unit activation scale for small test models:
// linears ~ N(0, 1 / in_features), norms 1, embeddings N(0, 1), GatedNorm gates small.
ModelWeights RandomWeights(const ModelConfig& c, uint64_t seed);

// A random checkpoint at a trained model's scale, produced one tensor (and one slice of it) at
// a time so that a model of any size is written with the memory of a chunk. Initialized as
// Hugging Face initializes a fresh model: weight matrices, embeddings and GatedNorm gates
// ~ N(0, initializer_range^2), biases 0, norm weights 1.
enum class RandomInit { kNormal, kZeros, kOnes };
struct RandomTensor {
  TensorId id;
  std::vector<int64_t> shape;
  RandomInit init = RandomInit::kNormal;
  float stddev = 0;  // kNormal only
  int64_t numel() const;
};

// The stored tensors of `c` in ForEachTensor order (a tied lm_head is not stored).
std::vector<RandomTensor> RandomCheckpointTensors(const ModelConfig& c);

// The random stream of one tensor: a function of the seed and the tensor's name only, so a
// tensor's values do not depend on the other tensors, their order or how files are split.
uint64_t RandomStreamKey(uint64_t seed, const std::string& tensor_name);

// Elements [begin, begin + n) of tensor `t` (row-major), from stream `key`. Each element is a
// pure function of (key, index): any chunking gives the same values, with any thread count.
void FillRandomTensor(const RandomTensor& t, uint64_t key, int64_t begin, int64_t n, float* out);

}  // namespace sq
