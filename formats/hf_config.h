// Hugging Face config.json <-> ModelConfig for LlamaForCausalLM, MistralForCausalLM,
// Qwen2ForCausalLM, Qwen3ForCausalLM (sliding windows as each config class sets them),
// Phi3ForCausalLM (partial_rotary_factor; rope_scaling longrope, or its old name su) and
// SmolLM3ForCausalLM (NoPE layers), plus sinkquant's extension fields `attn_output_gate` (bool)
// and `gated_norm_rank` (int).
#pragma once

#include <string>

#include "core/model_config.h"
#include "formats/json_util.h"

namespace sq {

// Reads and validates config.json; throws Error naming the file and field.
ModelConfig ParseHfConfig(const std::string& config_json_path);
// The same from an already-parsed object; `source` names it in errors.
ModelConfig HfConfigFromJson(const nlohmann::json& j, const std::string& source);

// The config.json text for `c` (throws Error when `c` has no HF form, e.g. adjacent RoPE
// pairing or qk_norm on a Llama). Round-trips through ParseHfConfig.
nlohmann::ordered_json HfConfigToJson(const ModelConfig& c);
void WriteHfConfig(const std::string& path, const ModelConfig& c);

}  // namespace sq
