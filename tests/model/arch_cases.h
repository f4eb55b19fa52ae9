// Tiny config.json files of the architectures with sliding windows (bound: windows of 4-7 keys
// against 24-token sequences), partial rotary and NoPE layers, each with what Hugging Face's
// config class and modeling code make of it, written out by hand for the reference. Shared by
// the reference, ONNX and transform tests.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sq::test {

struct ArchCase {
  std::string name;
  nlohmann::json config;
  // What HF computes, derived by hand from its config class (not from sinkquant's parser):
  int rotary_dim;           // int(head_dim * partial_rotary_factor)
  std::vector<int> window;  // per layer: keys j > i - window, 0 = full causal
  std::vector<bool> rope;   // per layer: RoPE applied
  bool fused;               // Phi-3: qkv_proj and gate_up_proj
  bool qkv_bias;
  bool tied;
  // longrope (empty lists: none): HF divides inverse frequency i by short_factor[i], or by
  // long_factor[i] when the sequence is longer than original_max, and scales cos/sin.
  std::vector<double> short_factor = {}, long_factor = {};
  int original_max = 0;
  double attention = 1.0;  // sqrt(1 + ln(max_position / original_max) / ln(original_max))
  // Gemma 2/3 (gemma 0: none of this). Norms scale by (1 + w) (norm_offset) and the attention
  // and FFN outputs pass their own norm before the residual add (post_norms); embeddings are
  // multiplied by embed_scale; scores by query_pre_attn_scalar^-0.5, then soft-capped, as are
  // the logits (0: no cap); GeGLU; Gemma 3 adds q/k norms, local_theta on sliding layers and
  // a linear rope_scaling factor on the global ones.
  int gemma = 0;
  int head_dim = 0;  // 0: hidden / heads
  bool norm_offset = false, post_norms = false, qk_norm = false;
  double embed_scale = 1.0, query_pre_attn_scalar = 0, attn_softcap = 0, final_softcap = 0;
  double local_theta = 0, linear_factor = 1.0;
};

// hidden 64, 4 heads of 16 over 2 KV heads, FFN 96, 3 layers, vocab 101 (the ONNX decoding
// prompts use ids up to 92).
inline nlohmann::json TinyShape(const char* arch) {
  return {{"architectures", {arch}},  {"hidden_size", 64},
          {"intermediate_size", 96},  {"num_hidden_layers", 3},
          {"num_attention_heads", 4}, {"num_key_value_heads", 2},
          {"vocab_size", 101},        {"max_position_embeddings", 64},
          {"rms_norm_eps", 1e-5},     {"rope_theta", 10000.0},
          {"hidden_act", "silu"}};
}

inline std::vector<ArchCase> ArchCases() {
  std::vector<ArchCase> cases;
  auto add = [&](std::string name, const char* arch, nlohmann::json extra, ArchCase ref) {
    ref.name = std::move(name);
    ref.config = TinyShape(arch);
    ref.config.update(extra);
    cases.push_back(std::move(ref));
  };
  const std::vector<bool> all_rope = {true, true, true};
  // Mistral: one window for every layer.
  add("mistral_window", "MistralForCausalLM",
      {{"sliding_window", 5}, {"tie_word_embeddings", false}},
      {{}, {}, 16, {5, 5, 5}, all_rope, false, false, false});
  // Qwen2: the window only with use_sliding_window, only in layers >= max_window_layers.
  add("qwen2_window", "Qwen2ForCausalLM",
      {{"use_sliding_window", true},
       {"sliding_window", 4},
       {"max_window_layers", 1},
       {"tie_word_embeddings", false}},
      {{}, {}, 16, {0, 4, 4}, all_rope, false, true, false});
  // Phi-3: fused projections, RoPE on the first half of each head, a window everywhere.
  add("phi3_partial_window", "Phi3ForCausalLM",
      {{"partial_rotary_factor", 0.5}, {"sliding_window", 7}, {"tie_word_embeddings", false}},
      {{}, {}, 8, {7, 7, 7}, all_rope, true, false, false});
  // Phi-4-mini's shape of it: 3/4 of each head rotates, tied embeddings, no window.
  add("phi4mini_partial", "Phi3ForCausalLM",
      {{"partial_rotary_factor", 0.75}, {"sliding_window", nullptr}, {"tie_word_embeddings", true}},
      {{}, {}, 12, {0, 0, 0}, all_rope, true, false, true});
  // Phi-4-mini's longrope: original_max_position_embeddings 20 sits between the reference's
  // 12 and 24 tokens and the ONNX test's 18 and 21-24 token windows, so both factor lists run
  // (its cached decodes, at most 17 tokens, stay short: HF switches lists per call, so a decode
  // crossing 20 would not match a full window, in HF either). factor = 64 / 20 = 3.2.
  const std::vector<double> short_f = {1.0, 1.1, 1.3, 1.6, 2.0, 2.5};
  const std::vector<double> long_f = {1.0, 1.5, 2.5, 4.0, 6.5, 9.0};
  add("phi4mini_longrope", "Phi3ForCausalLM",
      {{"partial_rotary_factor", 0.75},
       {"original_max_position_embeddings", 20},
       {"rope_scaling", {{"type", "longrope"}, {"short_factor", short_f}, {"long_factor", long_f}}},
       {"tie_word_embeddings", true}},
      {{},
       {},
       12,
       {0, 0, 0},
       all_rope,
       true,
       false,
       true,
       short_f,
       long_f,
       20,
       1.1782483944222266});
  // SmolLM3: no_rope_layers lists 1 for RoPE, 0 for NoPE.
  add("smollm3_nope", "SmolLM3ForCausalLM",
      {{"no_rope_layers", {1, 0, 1}}, {"tie_word_embeddings", true}},
      {{}, {}, 16, {0, 0, 0}, {true, false, true}, false, false, true});
  // SmolLM3 without the list: NoPE every 3rd layer; with use_sliding_window the NoPE layers
  // (only they) get the window.
  add("smollm3_interval_window", "SmolLM3ForCausalLM",
      {{"no_rope_layer_interval", 3},
       {"use_sliding_window", true},
       {"sliding_window", 6},
       {"tie_word_embeddings", false}},
      {{}, {}, 16, {0, 0, 6}, {true, true, false}, false, false, false});
  // Gemma 2: even layers slide, head_dim 24 != hidden / heads, scores scaled by 20^-0.5; caps
  // small enough to bind on these weights (the defaults, 50 and 30, would barely touch them).
  ArchCase g2{{}, {}, 24, {5, 0, 5}, all_rope, false, false, true};
  g2.gemma = 2, g2.head_dim = 24, g2.norm_offset = g2.post_norms = true;
  g2.embed_scale = 8.0, g2.query_pre_attn_scalar = 20, g2.attn_softcap = 2.0;
  g2.final_softcap = 3.0;
  add("gemma2", "Gemma2ForCausalLM",
      {{"model_type", "gemma2"},
       {"head_dim", 24},
       {"hidden_act", nullptr},
       {"hidden_activation", "gelu_pytorch_tanh"},
       {"query_pre_attn_scalar", 20},
       {"sliding_window", 5},
       {"attn_logit_softcapping", 2.0},
       {"final_logit_softcapping", 3.0}},
      g2);
  // Gemma 3: every 3rd layer global (sliding_window_pattern), RoPE theta 1e6 there with a
  // linear factor 8, 10000 on the sliding layers; q/k norms; no caps.
  ArchCase g3{{}, {}, 24, {6, 6, 0}, all_rope, false, false, true};
  g3.gemma = 3, g3.head_dim = 24, g3.norm_offset = g3.post_norms = g3.qk_norm = true;
  g3.embed_scale = 8.0, g3.query_pre_attn_scalar = 32, g3.local_theta = 10000.0;
  g3.linear_factor = 8.0;
  add("gemma3", "Gemma3ForCausalLM",
      {{"model_type", "gemma3_text"},
       {"head_dim", 24},
       {"hidden_act", nullptr},
       {"hidden_activation", "gelu_pytorch_tanh"},
       {"query_pre_attn_scalar", 32},
       {"sliding_window", 6},
       {"sliding_window_pattern", 3},
       {"rope_theta", 1000000.0},
       {"rope_local_base_freq", 10000.0},
       {"rope_scaling", {{"rope_type", "linear"}, {"factor", 8.0}}}},
      g3);
  return cases;
}

}  // namespace sq::test
