#include "model/random_weights.h"

#include <cmath>
#include <random>

namespace sq {

namespace {

TensorView Randn(ModelWeights& w, std::mt19937_64& rng, std::vector<int64_t> shape, float stddev) {
  std::normal_distribution<float> dist(0.0f, stddev);
  const int64_t rows = shape[0], cols = shape.size() > 1 ? shape[1] : 1;
  Mat m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = dist(rng);
  return w.Own(m, std::move(shape));
}

TensorView Ones(ModelWeights& w, int64_t n) { return w.Own(Mat::Ones(n, 1), {n}); }

NormGate RandomGate(ModelWeights& w, std::mt19937_64& rng, const ModelConfig& c) {
  if (c.gated_norm_rank == 0) return {};
  const int64_t d = c.hidden, r = c.gated_norm_rank;
  return {Randn(w, rng, {r, d}, 1.0f / std::sqrt(float(d))), Randn(w, rng, {d, r}, 1.0f)};
}

}  // namespace

ModelWeights RandomWeights(const ModelConfig& c, uint64_t seed) {
  std::mt19937_64 rng(seed);
  ModelWeights w;
  const int64_t d = c.hidden, f = c.intermediate, hd = c.head_dim;
  auto linear = [&](int64_t out, int64_t in) {
    return Randn(w, rng, {out, in}, 1.0f / std::sqrt(static_cast<float>(in)));
  };
  w.embed = Randn(w, rng, {c.vocab, d}, 1.0f);
  for (int l = 0; l < c.n_layers; ++l) {
    LayerWeights L;
    L.attn_norm = Ones(w, d);
    L.attn_norm_gate = RandomGate(w, rng, c);
    L.wq = linear(c.q_proj_rows(), d);
    L.wk = linear(c.kv_dim(), d);
    L.wv = linear(c.kv_dim(), d);
    if (c.qkv_bias) {
      L.bq = Randn(w, rng, {c.q_proj_rows()}, 0.02f);
      L.bk = Randn(w, rng, {c.kv_dim()}, 0.02f);
      L.bv = Randn(w, rng, {c.kv_dim()}, 0.02f);
    }
    if (c.qk_norm) {
      L.q_norm = Ones(w, hd);
      L.k_norm = Ones(w, hd);
    }
    L.wo = linear(d, c.q_dim());
    L.ffn_norm = Ones(w, d);
    L.ffn_norm_gate = RandomGate(w, rng, c);
    L.w_gate = linear(f, d);
    L.w_up = linear(f, d);
    L.w_down = linear(d, f);
    w.layers.push_back(L);
  }
  w.final_norm = Ones(w, d);
  w.final_norm_gate = RandomGate(w, rng, c);
  w.lm_head = c.tie_embeddings ? w.embed : linear(c.vocab, d);
  return w;
}

}  // namespace sq
