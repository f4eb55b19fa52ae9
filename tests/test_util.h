// Scaffolding the unit tests share: random matrices, small model shapes, random token windows,
// and the tolerances several tests compare against.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "calib/dataset.h"
#include "core/model_config.h"
#include "core/tensor.h"
#include "model/model.h"
#include "model/random_weights.h"

namespace sq::test {

// Captures the input of one site of one layer (every window that reaches it).
struct Capture : ForwardObserver {
  Site site;
  int layer;
  std::vector<Mat> seen;
  Capture(Site s, int l) : site(s), layer(l) {}
  bool Wants(Site s, int l) const override { return s == site && l == layer; }
  void Observe(const Where& at, const Mat& x) override {
    if (at.site == site && at.layer == layer) seen.push_back(x);
  }
};

// Two float computations of the same logits (another summation order, a fused kernel) agree
// to this, absolutely; more means a different computation, not rounding.
inline constexpr double kLogitTolerance = 1e-4;

// A `rows` x `cols` matrix of N(0, stddev^2) draws, the same for the same seed.
inline Mat RandomMat(int rows, int cols, uint64_t seed, float stddev = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  Mat m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = dist(rng);
  return m;
}

// The shape of a model small enough to build in a test; the defaults are the common one.
struct SmallShape {
  int hidden = 32;
  int intermediate = 64;
  int n_layers = 2;
  int n_heads = 4;
  int n_kv_heads = 2;  // GQA: two query heads per KV head
  int head_dim = 8;
  int vocab = 48;
  int max_position = 64;
};

// A ModelConfig of that shape, everything else at ModelConfig's defaults.
inline ModelConfig SmallConfig(const SmallShape& s = {}) {
  ModelConfig c;
  c.hidden = s.hidden;
  c.intermediate = s.intermediate;
  c.n_layers = s.n_layers;
  c.n_heads = s.n_heads;
  c.n_kv_heads = s.n_kv_heads;
  c.head_dim = s.head_dim;
  c.vocab = s.vocab;
  c.max_position = s.max_position;
  return c;
}

// `n` windows of `len` random token ids below `vocab`, the same for the same seed.
inline std::vector<Window> RandomWindows(int n, int len, int vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Window> ws(n);
  for (Window& w : ws) {
    w.tokens.resize(len);
    for (int& t : w.tokens) t = static_cast<int>(rng() % vocab);
  }
  return ws;
}

// Random weights with random norm weights (not ones), so that folding has something to fold
// and a norm's weight (Gemma's post-norms and q/k norms too) changes the logits.
inline Model RandomNormsModel(const ModelConfig& c) {
  ModelWeights w = RandomWeights(c, 11);
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<float> u(0.2f, 3.0f);
  auto randomize = [&](TensorView& v) {
    Mat g(v.numel(), 1);
    for (Eigen::Index i = 0; i < g.size(); ++i) g(i) = u(rng);
    v = w.Own(g, v.shape);
  };
  for (LayerWeights& L : w.layers) {
    randomize(L.attn_norm);
    randomize(L.ffn_norm);
    if (c.post_norms) {  // Gemma: transforms must leave these alone
      randomize(L.attn_post_norm);
      randomize(L.ffn_post_norm);
    }
  }
  randomize(w.final_norm);
  return BuildDenseModel(c, w);
}

}  // namespace sq::test
