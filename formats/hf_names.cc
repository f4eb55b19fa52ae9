#include "formats/hf_names.h"

#include <cstdlib>
#include <span>

#include "core/error.h"

namespace sq {

namespace {

struct NameEntry {
  Role role;
  const char* suffix;  // after "model.layers.N." for layer roles; the full name otherwise
};

constexpr NameEntry kModelNames[] = {
    {Role::kEmbed, "model.embed_tokens.weight"},
    {Role::kFinalNorm, "model.norm.weight"},
    {Role::kFinalNormGateDown, "model.norm.gate_down.weight"},
    {Role::kFinalNormGateUp, "model.norm.gate_up.weight"},
    {Role::kLmHead, "lm_head.weight"},
};

constexpr NameEntry kLayerNames[] = {
    {Role::kAttnNorm, "input_layernorm.weight"},
    {Role::kAttnNormGateDown, "input_layernorm.gate_down.weight"},
    {Role::kAttnNormGateUp, "input_layernorm.gate_up.weight"},
    {Role::kAttnQ, "self_attn.q_proj.weight"},
    {Role::kAttnK, "self_attn.k_proj.weight"},
    {Role::kAttnV, "self_attn.v_proj.weight"},
    {Role::kAttnQBias, "self_attn.q_proj.bias"},
    {Role::kAttnKBias, "self_attn.k_proj.bias"},
    {Role::kAttnVBias, "self_attn.v_proj.bias"},
    {Role::kAttnQNorm, "self_attn.q_norm.weight"},
    {Role::kAttnKNorm, "self_attn.k_norm.weight"},
    {Role::kAttnO, "self_attn.o_proj.weight"},
    {Role::kFfnNorm, "post_attention_layernorm.weight"},
    {Role::kFfnNormGateDown, "post_attention_layernorm.gate_down.weight"},
    {Role::kFfnNormGateUp, "post_attention_layernorm.gate_up.weight"},
    {Role::kFfnGate, "mlp.gate_proj.weight"},
    {Role::kFfnUp, "mlp.up_proj.weight"},
    {Role::kFfnDown, "mlp.down_proj.weight"},
};

// Gemma 2/3 (post_norms): four norms per layer, and post_attention_layernorm is the attention
// output's own norm rather than the FFN's input norm. Looked up before kLayerNames.
constexpr NameEntry kPostNormLayerNames[] = {
    {Role::kAttnPostNorm, "post_attention_layernorm.weight"},
    {Role::kFfnNorm, "pre_feedforward_layernorm.weight"},
    {Role::kFfnPostNorm, "post_feedforward_layernorm.weight"},
};

constexpr const char kLayerPrefix[] = "model.layers.";

// The layer-name tables of `c`'s layout, in lookup order.
std::vector<std::span<const NameEntry>> LayerTables(const ModelConfig& c) {
  if (c.post_norms) return {kPostNormLayerNames, kLayerNames};
  return {kLayerNames};
}

}  // namespace

std::string HfTensorName(TensorId id, const ModelConfig& c) {
  for (const auto& e : kModelNames) {
    if (e.role == id.role) return e.suffix;
  }
  for (std::span<const NameEntry> table : LayerTables(c)) {
    for (const auto& e : table) {
      if (e.role == id.role) return kLayerPrefix + std::to_string(id.layer) + "." + e.suffix;
    }
  }
  throw Error(std::string("no Hugging Face name for role ") + RoleName(id.role));
}

namespace {

// "model.layers.N.SUFFIX" -> (N, SUFFIX).
std::optional<std::pair<int, std::string>> SplitLayerName(const std::string& name) {
  const size_t n = sizeof(kLayerPrefix) - 1;
  if (name.compare(0, n, kLayerPrefix) != 0) return std::nullopt;
  size_t pos = n;
  int layer = 0;
  while (pos < name.size() && name[pos] >= '0' && name[pos] <= '9' && layer < 1000000) {
    layer = layer * 10 + (name[pos++] - '0');
  }
  if (pos == n || pos >= name.size() || name[pos] != '.') return std::nullopt;
  return std::pair{layer, name.substr(pos + 1)};
}

}  // namespace

std::optional<TensorId> ParseHfTensorName(const std::string& name, const ModelConfig& c) {
  for (const auto& e : kModelNames) {
    if (name == e.suffix) return TensorId{-1, e.role};
  }
  const auto split = SplitLayerName(name);
  if (!split) return std::nullopt;
  for (std::span<const NameEntry> table : LayerTables(c)) {
    for (const auto& e : table) {
      if (split->second == e.suffix) return TensorId{split->first, e.role};
    }
  }
  return std::nullopt;
}

const std::vector<HfFusedTensor>& HfFusedTensors() {
  static const std::vector<HfFusedTensor> kFused = {
      {"self_attn.qkv_proj.weight", {Role::kAttnQ, Role::kAttnK, Role::kAttnV}},
      {"mlp.gate_up_proj.weight", {Role::kFfnGate, Role::kFfnUp}},
  };
  return kFused;
}

bool HfFusesProjections(const ModelConfig& c) { return c.architecture == "Phi3ForCausalLM"; }

std::optional<std::pair<int, const HfFusedTensor*>> ParseHfFusedName(const std::string& name) {
  const auto split = SplitLayerName(name);
  if (!split) return std::nullopt;
  for (const HfFusedTensor& f : HfFusedTensors()) {
    if (split->second == f.suffix) return std::pair{split->first, &f};
  }
  return std::nullopt;
}

std::string HfFusedName(int layer, const HfFusedTensor& f) {
  return kLayerPrefix + std::to_string(layer) + "." + f.suffix;
}

TensorView& WeightSlot(ModelWeights& w, TensorId id) {
  switch (id.role) {
    case Role::kEmbed: return w.embed;
    case Role::kFinalNorm: return w.final_norm;
    case Role::kFinalNormGateDown: return w.final_norm_gate.down;
    case Role::kFinalNormGateUp: return w.final_norm_gate.up;
    case Role::kLmHead: return w.lm_head;
    default: break;
  }
  Check(id.layer >= 0 && id.layer < static_cast<int>(w.layers.size()),
        "layer " + std::to_string(id.layer) + " out of range");
  LayerWeights& L = w.layers[id.layer];
  switch (id.role) {
    case Role::kAttnNorm: return L.attn_norm;
    case Role::kAttnNormGateDown: return L.attn_norm_gate.down;
    case Role::kAttnNormGateUp: return L.attn_norm_gate.up;
    case Role::kAttnQ: return L.wq;
    case Role::kAttnK: return L.wk;
    case Role::kAttnV: return L.wv;
    case Role::kAttnQBias: return L.bq;
    case Role::kAttnKBias: return L.bk;
    case Role::kAttnVBias: return L.bv;
    case Role::kAttnQNorm: return L.q_norm;
    case Role::kAttnKNorm: return L.k_norm;
    case Role::kAttnO: return L.wo;
    case Role::kAttnPostNorm:
      return L.attn_post_norm;
    case Role::kFfnPostNorm:
      return L.ffn_post_norm;
    case Role::kFfnNorm: return L.ffn_norm;
    case Role::kFfnNormGateDown: return L.ffn_norm_gate.down;
    case Role::kFfnNormGateUp: return L.ffn_norm_gate.up;
    case Role::kFfnGate: return L.w_gate;
    case Role::kFfnUp: return L.w_up;
    case Role::kFfnDown: return L.w_down;
    default: break;
  }
  throw Error(std::string("no slot for role ") + RoleName(id.role));
}

}  // namespace sq
