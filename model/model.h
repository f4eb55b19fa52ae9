// Model: a config, its weights, and the Linear each projection runs through.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "core/model_config.h"
#include "model/linear.h"
#include "model/observer.h"
#include "core/model_weights.h"

namespace sq {

struct LayerLinears {
  std::shared_ptr<const Linear> q, k, v, o, gate, up, down;
  std::shared_ptr<const HeadRotation> qk;  // null: queries and keys stay as RoPE left them
  // Null, or Q: the values were rotated by Q (in W_v) for the KV quantizer, and a gate before
  // o_proj keeps Q from folding into W_o, so every head of the attention output gets x Q^T.
  std::shared_ptr<const HeadRotation> attn_out;
  // Null, or Q [d]: Gemma's post-norm outputs (attention and FFN) get x Q before the residual add
  // when the residual stream is rotated (Q cannot fold through the post-norm's weight).
  std::shared_ptr<const HeadRotation> post_out;
};

struct Model {
  ModelConfig config;
  ModelWeights weights;
  std::vector<LayerLinears> linears;    // one per layer
  std::shared_ptr<const Linear> lm_head;
  std::shared_ptr<const KvQuantizer> kv_quant;  // null: keys and values stay float
};

// Wraps `weights` in DenseLinears. The result shares the weights' storage.
Model BuildDenseModel(const ModelConfig& config, ModelWeights weights);

// Throws Error unless `tokens` is a non-empty sequence within max_position_embeddings.
void CheckSequence(const ModelConfig& c, std::span<const int> tokens);

// Full forward pass over one sequence at positions 0..T-1 (batched prefill, causal).
// Returns logits [T, V].
Mat Forward(const Model& m, std::span<const int> tokens, ForwardObserver* obs = nullptr);

// The same pass in pieces, for layer-by-layer calibration (GPTQ).
Mat Embed(const Model& m, std::span<const int> tokens);                  // [T, d]
void ForwardBlock(const Model& m, int layer, Mat& h, ForwardObserver* obs);  // h [T, d] in place
Mat Head(const Model& m, const Mat& h, ForwardObserver* obs);            // [T, V]

}  // namespace sq
