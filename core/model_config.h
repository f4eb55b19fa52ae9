// ModelConfig: every architectural fact the engine needs, as a plain struct with defaults.
// formats/ fills it from config.json or a llama2.c header; nothing else parses files.
#pragma once

#include <cmath>
#include <string>
#include <vector>

namespace sq {

// How RoPE pairs the dimensions of a head.
enum class RopePairing {
  kHalf,      // Hugging Face rotate_half: (x[i], x[i + head_dim/2])
  kAdjacent,  // llama2.c / Meta original: (x[2i], x[2i+1])
};

// rope_scaling of type "llama3" (Llama 3.1/3.2, `enabled`): long wavelengths are stretched by
// `factor`. Or of type "longrope" (Phi-3 128k, Phi-3.5, Phi-4-mini, `longrope`): inverse
// frequency i is divided by short_factor[i], or by long_factor[i] for a sequence longer than
// original_max_position, and cos/sin are multiplied by attention_factor.
struct RopeScaling {
  bool enabled = false;
  float factor = 1.0f;
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int original_max_position = 8192;
  bool longrope = false;
  std::vector<float> short_factor = {}, long_factor = {};  // rope_dim/2 entries each
  float attention_factor = 1.0f;
  // rope_scaling of type "linear" (Gemma 3's global layers): every inverse frequency / factor.
  bool linear = false;
};

// The FFN's gate activation: silu (SwiGLU) or gelu with the tanh approximation (Gemma's GeGLU,
// hidden_activation gelu_pytorch_tanh).
enum class FfnActivation { kSilu, kGeluTanh };

struct ModelConfig {
  std::string architecture = "LlamaForCausalLM";  // as config.json names it
  int hidden = 0;            // d_model
  int intermediate = 0;      // FFN width
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;        // = n_heads when there is no GQA
  int head_dim = 0;          // usually hidden / n_heads; Qwen3 sets it explicitly
  int vocab = 0;
  int max_position = 2048;   // max_position_embeddings
  float norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
  RopePairing rope_pairing = RopePairing::kHalf;
  RopeScaling rope_scaling;
  bool tie_embeddings = false;
  bool qkv_bias = false;        // Qwen2: biases on q/k/v projections
  bool qk_norm = false;         // Qwen3: RMSNorm over each head of q and k before RoPE
  bool attn_output_gate = false;  // Qwen3-Next: q_proj emits [query | gate] per head
  int gated_norm_rank = 0;      // GatedNorm: sigmoid low-rank gate after every norm (0 = off)
  // RoPE rotates only the first rotary_dim dims of each head (Phi-3's partial_rotary_factor),
  // pairing them among themselves; the rest pass through. 0 = the whole head.
  int rotary_dim = 0;
  // Per layer: a query at position i sees keys at positions > i - window (Mistral, Qwen2,
  // Phi-3 sliding window); 0 = every earlier key. Empty = full attention in every layer.
  std::vector<int> layer_window;
  // Per layer: true when the layer applies no RoPE (SmolLM3's NoPE layers). Empty = none.
  std::vector<bool> layer_nope;
  // Gemma 2/3. The embedding is multiplied by embed_scale (sqrt(hidden)); each block's attention
  // and FFN outputs pass their own RMSNorm before the residual add (post_norms); attention
  // scores are scaled by query_pre_attn_scalar^-0.5 (0 = head_dim's) and, with
  // attn_softcap > 0, capped as tanh(s / cap) * cap before the mask, logits likewise with
  // final_softcap. Sliding-window layers use rope_local_theta without rope_scaling (Gemma 3;
  // 0 = rope_theta everywhere).
  float embed_scale = 1.0f;
  bool post_norms = false;
  FfnActivation ffn_activation = FfnActivation::kSilu;
  float query_pre_attn_scalar = 0.0f;
  float attn_softcap = 0.0f;
  float final_softcap = 0.0f;
  float rope_local_theta = 0.0f;
  // Gemma's checkpoints store every RMSNorm weight as w for a scale of (1 + w). formats/ adds
  // the 1 when loading (in float, as HF does) and takes it off when writing, so the engine and
  // the transforms see the scale itself.
  bool norm_weight_offset = false;
  float initializer_range = 0.02f;  // std of the normal init of weights (random checkpoints)
  int bos_id = -1;
  int eos_id = -1;

  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }
  // Rows of q_proj: the query, plus the gate when gated attention is on.
  int q_proj_rows() const { return attn_output_gate ? 2 * q_dim() : q_dim(); }
  int heads_per_kv() const { return n_heads / n_kv_heads; }
  int rope_dim() const { return rotary_dim > 0 ? rotary_dim : head_dim; }
  int window(int layer) const { return layer_window.empty() ? 0 : layer_window[layer]; }
  bool rope(int layer) const { return layer_nope.empty() || !layer_nope[layer]; }
  float attention_scale() const {
    const double s = query_pre_attn_scalar > 0 ? query_pre_attn_scalar : head_dim;
    return static_cast<float>(1.0 / std::sqrt(s));
  }
};

// True for a sliding-window layer of a model with rope_local_theta (Gemma 3's local rotary
// embedding): such layers share one RoPE table of their own.
bool LocalRope(const ModelConfig& c, int layer);

// The RoPE facts of layer `layer`: `c` itself, or for a LocalRope layer, rope_local_theta and
// no rope_scaling.
ModelConfig LayerRopeConfig(const ModelConfig& c, int layer);

// Keeps layers [first, first + count) of `c`: n_layers and the per-layer facts move together
// (a layer slice must still know its own window and RoPE).
ModelConfig SliceLayers(const ModelConfig& c, int first, int count);

// Throws Error naming `source` when a field is missing, non-positive or inconsistent.
void ValidateConfig(const ModelConfig& c, const std::string& source);

}  // namespace sq
