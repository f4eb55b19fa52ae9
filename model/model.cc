// The forward pass. One block reads like the paper:
//   x = Norm(h); h += o_proj(Attention(q(x), k(x), v(x)) * gate);  x = Norm(h); h +=
//   down(silu(gate(x)) * up(x))
// Gemma: gelu_tanh for silu, and each branch output passes its own norm before the add.
#include "model/model.h"

#include <cmath>

#include "core/error.h"
#include "model/ops.h"

namespace sq {

Model BuildDenseModel(const ModelConfig& config, ModelWeights weights) {
  Model m;
  m.config = config;
  m.weights = std::move(weights);
  for (const LayerWeights& L : m.weights.layers) {
    LayerLinears lin;
    lin.q = std::make_shared<DenseLinear>(L.wq, L.bq);
    lin.k = std::make_shared<DenseLinear>(L.wk, L.bk);
    lin.v = std::make_shared<DenseLinear>(L.wv, L.bv);
    lin.o = std::make_shared<DenseLinear>(L.wo);
    lin.gate = std::make_shared<DenseLinear>(L.w_gate);
    lin.up = std::make_shared<DenseLinear>(L.w_up);
    lin.down = std::make_shared<DenseLinear>(L.w_down);
    m.linears.push_back(std::move(lin));
  }
  m.lm_head = std::make_shared<DenseLinear>(m.weights.lm_head);
  return m;
}

namespace {

void Notify(ForwardObserver* obs, const Where& at, const Mat& x) {
  if (obs && obs->Wants(at.site, at.layer)) obs->Observe(at, x);
}

// RMSNorm, then GatedNorm's gate when the model has one.  x [T, d] -> [T, d]
Mat Norm(const Mat& x, const TensorView& w, const NormGate& gate, float eps, ForwardObserver* obs,
         int layer, int which) {
  Mat y = RmsNorm(x, ToVec(w), eps);
  if (!gate.present()) return y;
  Mat g = NormGateValues(y, ToMat(gate.down), ToMat(gate.up));
  Notify(obs, {Site::kNormGate, layer, which}, g);
  return y.cwiseProduct(g);
}

// One head's columns [T, hd] of a [T, n*hd] matrix.
Mat HeadCols(const Mat& x, int head, int hd) { return x.middleCols(head * hd, hd); }

// Splits the gated q_proj output [T, 2*H*hd] (per head: query | gate) into query and gate.
void SplitQueryGate(const Mat& qg, int H, int hd, Mat& q, Mat& gate) {
  q.resize(qg.rows(), H * hd);
  gate.resize(qg.rows(), H * hd);
  for (int h = 0; h < H; ++h) {
    q.middleCols(h * hd, hd) = qg.middleCols(2 * h * hd, hd);
    gate.middleCols(h * hd, hd) = qg.middleCols(2 * h * hd + hd, hd);
  }
}

// Qwen3's q/k norm: RMSNorm over each head of x [T, n*hd] with weight [hd].
void HeadNorm(Mat& x, const TensorView& w, int hd, float eps) {
  const Vec wv = ToVec(w);
  for (Eigen::Index h = 0; h < x.cols() / hd; ++h) {
    x.middleCols(h * hd, hd) = RmsNorm(x.middleCols(h * hd, hd), wv, eps);
  }
}

// x [T, n*hd] as one row per (token, head): x is row-major, so each run of hd values is one.
MatMap Heads(Mat& x, int hd) {
  Check(x.cols() % hd == 0, "head rotation: width does not match head_dim");
  return MatMap(x.data(), x.size() / hd, hd);
}

void RotateHeads(const HeadRotation& r, Mat& q, Mat& k) {
  r.Apply(Heads(q, r.size()));
  r.Apply(Heads(k, r.size()));
}

// Self-attention of block `l` on normed input x [T, d]; returns the o_proj input [T, H*hd].
Mat Attention(const Model& m, int l, const Mat& x, ForwardObserver* obs) {
  const ModelConfig& c = m.config;
  const LayerWeights& L = m.weights.layers[l];
  const LayerLinears& lin = m.linears[l];
  const int T = static_cast<int>(x.rows()), H = c.n_heads, Hkv = c.n_kv_heads, hd = c.head_dim;

  Mat q, k, v, gate;
  lin.q->Apply(x, q);  // [T, H*hd] or [T, 2*H*hd] with the gate
  lin.k->Apply(x, k);  // [T, Hkv*hd]
  lin.v->Apply(x, v);  // [T, Hkv*hd]
  if (c.attn_output_gate) {
    Mat qg = std::move(q);
    SplitQueryGate(qg, H, hd, q, gate);
  }
  if (c.qk_norm) {
    HeadNorm(q, L.q_norm, hd, c.norm_eps);
    HeadNorm(k, L.k_norm, hd, c.norm_eps);
  }
  if (c.rope(l)) {  // NoPE layers (SmolLM3) attend by content alone
    const RopeTable rope = MakeRopeTable(LayerRopeConfig(c, l), T);
    ApplyRope(q, hd, rope, c.rope_pairing);
    ApplyRope(k, hd, rope, c.rope_pairing);
  }
  if (lin.qk) RotateHeads(*lin.qk, q, k);
  if (m.kv_quant) {
    for (int g = 0; g < Hkv; ++g) {
      Mat kh = HeadCols(k, g, hd), vh = HeadCols(v, g, hd);
      m.kv_quant->Apply(kh);
      m.kv_quant->Apply(vh);
      k.middleCols(g * hd, hd) = kh;
      v.middleCols(g * hd, hd) = vh;
    }
  }
  auto notify_heads = [&](Site site, const Mat& x, int n) {
    if (!obs || !obs->Wants(site, l)) return;
    for (int h = 0; h < n; ++h) obs->Observe({site, l, h}, HeadCols(x, h, hd));
  };
  notify_heads(Site::kQuery, q, H);
  notify_heads(Site::kKey, k, Hkv);
  notify_heads(Site::kValue, v, Hkv);

  const bool want_probs = obs && obs->Wants(Site::kAttnProbs, l);
  std::vector<Mat> probs(want_probs ? H : 0);
  Mat out(T, H * hd);
  const bool parallel = static_cast<double>(T) * T * hd * H > (1 << 20);  // worth the threads?
#pragma omp parallel for schedule(dynamic) if (parallel)
  for (int h = 0; h < H; ++h) {
    const int g = h / c.heads_per_kv();  // GQA: heads share KV head g
    Mat o;
    HeadAttention(HeadCols(q, h, hd), HeadCols(k, g, hd), HeadCols(v, g, hd), o,
                  want_probs ? &probs[h] : nullptr,
                  {c.window(l), c.attention_scale(), c.attn_softcap});
    out.middleCols(h * hd, hd) = o;
  }
  for (int h = 0; h < static_cast<int>(probs.size()); ++h) {
    obs->Observe({Site::kAttnProbs, l, h}, probs[h]);
  }
  if (lin.attn_out) lin.attn_out->ApplyTransposed(Heads(out, hd));
  if (c.attn_output_gate) {
    gate = gate.unaryExpr([](float z) { return Sigmoid(z); });
    Notify(obs, {Site::kAttnGate, l}, gate);
    out = out.cwiseProduct(gate);
  }
  return out;
}

// Gemma's post-norm of a branch output y [T, d], in place, then the residual rotation when the
// stream is rotated.
void PostNorm(const LayerLinears& lin, const TensorView& w, float eps, Mat& y) {
  y = RmsNorm(y, ToVec(w), eps);
  if (lin.post_out) lin.post_out->Apply(y);
}

}  // namespace

Mat Embed(const Model& m, std::span<const int> tokens) {
  const TensorView& e = m.weights.embed;
  const int64_t d = e.cols();
  Mat h(static_cast<Eigen::Index>(tokens.size()), d);
  for (size_t t = 0; t < tokens.size(); ++t) {
    Check(tokens[t] >= 0 && tokens[t] < e.rows(),
          "token id " + std::to_string(tokens[t]) + " at position " + std::to_string(t) +
              " is outside the embedding table (vocab " + std::to_string(e.rows()) + ")");
    ToFloat(e.dtype, e.data + static_cast<size_t>(tokens[t]) * d * DTypeSize(e.dtype),
            h.row(t).data(), d);
  }
  if (m.config.embed_scale != 1.0f) h *= m.config.embed_scale;  // Gemma: sqrt(hidden)
  return h;
}

void ForwardBlock(const Model& m, int l, Mat& h, ForwardObserver* obs) {
  const ModelConfig& c = m.config;
  const LayerWeights& L = m.weights.layers[l];
  const LayerLinears& lin = m.linears[l];

  Mat x = Norm(h, L.attn_norm, L.attn_norm_gate, c.norm_eps, obs, l, 0);  // [T, d]
  Notify(obs, {Site::kAttnInput, l}, x);
  Mat attn = Attention(m, l, x, obs);                                    // [T, H*hd]
  Notify(obs, {Site::kOInput, l}, attn);
  Mat y;
  lin.o->Apply(attn, y);
  if (c.post_norms) PostNorm(lin, L.attn_post_norm, c.norm_eps, y);  // Gemma
  h += y;

  x = Norm(h, L.ffn_norm, L.ffn_norm_gate, c.norm_eps, obs, l, 1);
  Notify(obs, {Site::kFfnInput, l}, x);
  Mat g, u;
  lin.gate->Apply(x, g);   // [T, f]
  lin.up->Apply(x, u);     // [T, f]
  const Mat a = GatedActivation(c.ffn_activation, g, u);
  Notify(obs, {Site::kDownInput, l}, a);
  lin.down->Apply(a, y);   // [T, d]
  if (c.post_norms) PostNorm(lin, L.ffn_post_norm, c.norm_eps, y);
  h += y;
  Notify(obs, {Site::kResidual, l}, h);
}

Mat Head(const Model& m, const Mat& h, ForwardObserver* obs) {
  const ModelConfig& c = m.config;
  Mat x = Norm(h, m.weights.final_norm, m.weights.final_norm_gate, c.norm_eps, obs, c.n_layers, 0);
  Notify(obs, {Site::kHeadInput, c.n_layers}, x);
  Mat logits;
  m.lm_head->Apply(x, logits);  // [T, V]
  Softcap(logits, c.final_softcap);  // Gemma 2
  Notify(obs, {Site::kLogits, c.n_layers}, logits);
  return logits;
}

void CheckSequence(const ModelConfig& c, std::span<const int> tokens) {
  Check(!tokens.empty(), "Forward: no tokens");
  Check(static_cast<int>(tokens.size()) <= c.max_position,
        "sequence of " + std::to_string(tokens.size()) + " tokens exceeds max_position_embeddings " +
            std::to_string(c.max_position));
}

Mat Forward(const Model& m, std::span<const int> tokens, ForwardObserver* obs) {
  CheckSequence(m.config, tokens);
  Mat h = Embed(m, tokens);
  Notify(obs, {Site::kResidual, -1}, h);
  for (int l = 0; l < m.config.n_layers; ++l) ForwardBlock(m, l, h, obs);
  return Head(m, h, obs);
}

}  // namespace sq
