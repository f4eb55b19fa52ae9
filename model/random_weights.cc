#include "model/random_weights.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace sq {

namespace {

// A stand-in for data: the layout's views must be non-empty for ForEachTensor to visit them,
// and nothing ever reads through them.
const std::byte kLayoutOnly{};

TensorView Slot(std::vector<int64_t> shape) {
  TensorView v;
  v.shape = std::move(shape);
  v.data = &kLayoutOnly;
  return v;
}

NormGate GateSlots(const ModelConfig& c) {
  if (c.gated_norm_rank == 0) return {};
  return {Slot({c.gated_norm_rank, c.hidden}), Slot({c.hidden, c.gated_norm_rank})};
}

// Every tensor `c` needs, with its shape and no data: the one list both generators walk.
ModelWeights Layout(const ModelConfig& c) {
  ModelWeights w;
  const int64_t d = c.hidden, f = c.intermediate, hd = c.head_dim;
  w.embed = Slot({c.vocab, d});
  for (int l = 0; l < c.n_layers; ++l) {
    LayerWeights L;
    L.attn_norm = Slot({d});
    L.attn_norm_gate = GateSlots(c);
    L.wq = Slot({c.q_proj_rows(), d});
    L.wk = Slot({c.kv_dim(), d});
    L.wv = Slot({c.kv_dim(), d});
    if (c.qkv_bias) {
      L.bq = Slot({c.q_proj_rows()});
      L.bk = Slot({c.kv_dim()});
      L.bv = Slot({c.kv_dim()});
    }
    if (c.qk_norm) {
      L.q_norm = Slot({hd});
      L.k_norm = Slot({hd});
    }
    L.wo = Slot({d, c.q_dim()});
    if (c.post_norms) L.attn_post_norm = Slot({d});
    L.ffn_norm = Slot({d});
    L.ffn_norm_gate = GateSlots(c);
    L.w_gate = Slot({f, d});
    L.w_up = Slot({f, d});
    L.w_down = Slot({d, f});
    if (c.post_norms) L.ffn_post_norm = Slot({d});
    w.layers.push_back(L);
  }
  w.final_norm = Slot({d});
  w.final_norm_gate = GateSlots(c);
  w.lm_head = c.tie_embeddings ? w.embed : Slot({c.vocab, d});
  return w;
}

bool IsBias(Role r) {
  return r == Role::kAttnQBias || r == Role::kAttnKBias || r == Role::kAttnVBias;
}

// RandomWeights' unit-activation scale (tests rely on its exact values for a seed).
float TestScale(const TensorView& v, Role r) {
  if (r == Role::kEmbed || r == Role::kAttnNormGateUp || r == Role::kFfnNormGateUp ||
      r == Role::kFinalNormGateUp) {
    return 1.0f;
  }
  if (IsBias(r)) return 0.02f;
  return 1.0f / std::sqrt(static_cast<float>(v.cols()));
}

// SplitMix64's finalizer: a bijective mix whose outputs for consecutive inputs are
// statistically independent, so it serves as a counter-based generator.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Two standard normals from one 64-bit draw (Box-Muller on two 32-bit uniforms).
void NormalPair(uint64_t bits, float* a, float* b) {
  constexpr double kTwoPi = 6.283185307179586;
  const double u1 = (static_cast<double>(bits >> 32) + 0.5) * 0x1p-32;  // (0, 1): log is finite
  const double u2 = static_cast<double>(bits & 0xffffffffu) * 0x1p-32;
  const double r = std::sqrt(-2.0 * std::log(u1));
  *a = static_cast<float>(r * std::cos(kTwoPi * u2));
  *b = static_cast<float>(r * std::sin(kTwoPi * u2));
}

}  // namespace

ModelWeights RandomWeights(const ModelConfig& c, uint64_t seed) {
  std::mt19937_64 rng(seed);
  ModelWeights w = Layout(c);
  ForEachTensor(c, w, [&](TensorId id, TensorView& v) {
    Mat m(v.rows(), v.cols());
    if (IsNormRole(id.role)) {
      m.setOnes();
    } else {
      std::normal_distribution<float> dist(0.0f, TestScale(v, id.role));
      for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = dist(rng);
    }
    v = w.Own(m, v.shape);
  });
  if (c.tie_embeddings) w.lm_head = w.embed;
  return w;
}

int64_t RandomTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<RandomTensor> RandomCheckpointTensors(const ModelConfig& c) {
  const ModelWeights layout = Layout(c);
  std::vector<RandomTensor> out;
  ForEachTensor(c, layout, [&](TensorId id, const TensorView& v) {
    RandomTensor t{id, v.shape, RandomInit::kNormal, c.initializer_range};
    // A norm scales by one: weight 1, or 0 where the checkpoint stores 1 + w (Gemma).
    if (IsNormRole(id.role)) t.init = c.norm_weight_offset ? RandomInit::kZeros : RandomInit::kOnes;
    if (IsBias(id.role)) t.init = RandomInit::kZeros;
    out.push_back(std::move(t));
  });
  return out;
}

uint64_t RandomStreamKey(uint64_t seed, const std::string& tensor_name) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a: stable across platforms, unlike std::hash
  for (unsigned char ch : tensor_name) h = (h ^ ch) * 0x100000001b3ull;
  return Mix(Mix(seed) ^ h);
}

void FillRandomTensor(const RandomTensor& t, uint64_t key, int64_t begin, int64_t n, float* out) {
  if (t.init != RandomInit::kNormal) {
    std::fill(out, out + n, t.init == RandomInit::kOnes ? 1.0f : 0.0f);
    return;
  }
  // Element i is one half of pair i / 2, drawn from counter key + i / 2.
  const int64_t first_pair = begin / 2, end_pair = (begin + n + 1) / 2;
#pragma omp parallel for schedule(static)
  for (int64_t p = first_pair; p < end_pair; ++p) {
    float z[2];
    NormalPair(Mix(key + static_cast<uint64_t>(p)), &z[0], &z[1]);
    for (int k = 0; k < 2; ++k) {
      const int64_t i = 2 * p + k;
      if (i >= begin && i < begin + n) out[i - begin] = t.stddev * z[k];
    }
  }
}

}  // namespace sq
