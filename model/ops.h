// The transformer's operations, each with a plain scalar reference (`...Ref`) that tests
// compare the fast version against. Ops know nothing of layers or checkpoints.
//
// Legend: T = tokens, d = width, H = heads, Hkv = KV heads, hd = head_dim.
#pragma once

#include <vector>

#include "core/model_config.h"
#include "core/tensor.h"

namespace sq {

// y = x * rsqrt(mean(x^2) + eps) * w, row by row.  x [T, d], w [d] (empty w: weightless).
Mat RmsNorm(const Mat& x, const Vec& w, float eps);
Mat RmsNormRef(const Mat& x, const Vec& w, float eps);

// GatedNorm's gate: sigmoid(up @ silu(down @ y)) elementwise.  y [T, d], down [r, d], up [d, r].
Mat NormGateValues(const Mat& y, const Mat& down, const Mat& up);

// cos/sin per position and rotary pair: [T, rope_dim/2], with rope_scaling applied for a
// sequence of T tokens (longrope's factors depend on the length); the second form gives the
// first `rows` rows of the table of a sequence of `seq_len` tokens.
struct RopeTable {
  Mat cos, sin;
};
RopeTable MakeRopeTable(const ModelConfig& c, int T);
RopeTable MakeRopeTable(const ModelConfig& c, int rows, int seq_len);
// The inverse frequency of each rotary pair i in [0, rope_dim/2) (after rope_scaling) for a
// sequence of seq_len tokens (0: unknown, which longrope treats as short, as HF does).
std::vector<double> RopeInvFreq(const ModelConfig& c, int seq_len = 0);
// Whether longrope uses long_factor for a sequence of seq_len tokens: Hugging Face decides
// per forward call, by max(position_ids) + 1 > original_max_position_embeddings.
bool LongRopeIsLong(const ModelConfig& c, int seq_len);

// Rotates every head of x in place.  x [T, n*hd] with n heads of width hd; the table's width
// says how many leading dims of each head rotate (2 * its columns), the rest pass through.
void ApplyRope(Mat& x, int hd, const RopeTable& t, RopePairing pairing);
void ApplyRopeRef(Mat& x, int hd, const RopeTable& t, RopePairing pairing);

// Causal softmax attention for one head.  q [T, hd], k [T, hd], v [T, hd] -> out [T, hd];
// probs [T, T] (row t: query t over keys 0..t) is filled when non-null. With window > 0, query
// t sees only keys j > t - window (Hugging Face's sliding window: `window` keys, itself included).
// Scores are q.k * scale (0: 1/sqrt(hd)), with softcap > 0 then tanh(s / softcap) * softcap
// (Gemma 2's attn_logit_softcapping), before the mask.
struct AttnShape {
  int window = 0;
  float scale = 0.0f;
  float softcap = 0.0f;
};
void HeadAttention(const Mat& q, const Mat& k, const Mat& v, Mat& out, Mat* probs,
                   AttnShape shape = {});
void HeadAttentionRef(const Mat& q, const Mat& k, const Mat& v, Mat& out, Mat* probs,
                      AttnShape shape = {});
// Gemma's soft-cap, in place: x <- tanh(x / cap) * cap (cap 0: unchanged).
void Softcap(Mat& x, float cap);

// silu(gate) * up, elementwise.  [T, f]
Mat SwiGlu(const Mat& gate, const Mat& up);
Mat SwiGluRef(const Mat& gate, const Mat& up);
// gelu_tanh(gate) * up (Gemma's GeGLU), elementwise.  [T, f]
Mat GeGlu(const Mat& gate, const Mat& up);
// The FFN's gated activation of `act`.
Mat GatedActivation(FfnActivation act, const Mat& gate, const Mat& up);

inline float Sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
inline float Silu(float x) { return x / (1.0f + std::exp(-x)); }
// PyTorch's gelu(approximate="tanh"): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
inline float GeluTanh(float x) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
}

}  // namespace sq
