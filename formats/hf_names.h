// Hugging Face tensor names <-> roles. The engine names tensors by role (TensorId); the
// strings live only here.
#pragma once

#include <optional>
#include <string>

#include "core/model_weights.h"

namespace sq {

// "model.layers.3.self_attn.q_proj.weight", "model.embed_tokens.weight", "lm_head.weight",
// GatedNorm gates: "model.layers.3.input_layernorm.gate_down.weight", "model.norm.gate_up.weight".
std::string HfTensorName(TensorId id);

// The inverse: nullopt for names sinkquant does not use (e.g. "...rotary_emb.inv_freq").
std::optional<TensorId> ParseHfTensorName(const std::string& name);

// The slot of `w` that holds `id` (creates nothing; `w.layers` must be sized already).
TensorView& WeightSlot(ModelWeights& w, TensorId id);

}  // namespace sq
