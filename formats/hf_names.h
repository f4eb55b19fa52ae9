// Hugging Face tensor names <-> roles. The engine names tensors by role (TensorId); the
// strings live only here.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/model_weights.h"

namespace sq {

// "model.layers.3.self_attn.q_proj.weight", "model.embed_tokens.weight", "lm_head.weight",
// GatedNorm gates: "model.layers.3.input_layernorm.gate_down.weight", "model.norm.gate_up.weight".
// The layout is `c`'s: with Gemma's post-norms, "post_attention_layernorm" is the attention
// output's norm and "pre_feedforward_layernorm" the FFN's input norm (default: Llama's layout).
std::string HfTensorName(TensorId id, const ModelConfig& c = ModelConfig());

// The inverse: nullopt for names sinkquant does not use (e.g. "...rotary_emb.inv_freq").
std::optional<TensorId> ParseHfTensorName(const std::string& name,
                                          const ModelConfig& c = ModelConfig());

// Phi-3 stores q, k, v as one "self_attn.qkv_proj.weight" (their rows stacked in that order) and
// gate, up as one "mlp.gate_up_proj.weight" (gate rows, then up rows). Split at load; written
// fused again for a config whose architecture is Phi-3.
struct HfFusedTensor {
  const char* suffix;       // after "model.layers.N."
  std::vector<Role> parts;  // in row order
};
const std::vector<HfFusedTensor>& HfFusedTensors();
bool HfFusesProjections(const ModelConfig& c);
// The fused tensor and layer a name holds, or nullopt.
std::optional<std::pair<int, const HfFusedTensor*>> ParseHfFusedName(const std::string& name);
std::string HfFusedName(int layer, const HfFusedTensor& f);

// The slot of `w` that holds `id` (creates nothing; `w.layers` must be sized already).
TensorView& WeightSlot(ModelWeights& w, TensorId id);

}  // namespace sq
