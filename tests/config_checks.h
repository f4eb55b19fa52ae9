// One field-by-field comparison of two ModelConfigs, for the tests that round-trip a config
// through config.json (a failing CHECK names the field).
#pragma once

#include <catch2/catch.hpp>

#include "core/model_config.h"

namespace sq::test {

// Every field config.json carries (not initializer_range, which only random-model reads).
inline void CheckSameConfig(const ModelConfig& got, const ModelConfig& want) {
  CHECK(got.architecture == want.architecture);
  CHECK(got.hidden == want.hidden);
  CHECK(got.intermediate == want.intermediate);
  CHECK(got.n_layers == want.n_layers);
  CHECK(got.n_heads == want.n_heads);
  CHECK(got.n_kv_heads == want.n_kv_heads);
  CHECK(got.head_dim == want.head_dim);
  CHECK(got.vocab == want.vocab);
  CHECK(got.max_position == want.max_position);
  CHECK(got.norm_eps == want.norm_eps);
  CHECK(got.rope_theta == want.rope_theta);
  CHECK(got.rope_scaling.enabled == want.rope_scaling.enabled);
  CHECK(got.rope_scaling.factor == want.rope_scaling.factor);
  CHECK(got.rope_scaling.low_freq_factor == want.rope_scaling.low_freq_factor);
  CHECK(got.rope_scaling.high_freq_factor == want.rope_scaling.high_freq_factor);
  CHECK(got.rope_scaling.original_max_position == want.rope_scaling.original_max_position);
  CHECK(got.rope_scaling.longrope == want.rope_scaling.longrope);
  CHECK(got.rope_scaling.short_factor == want.rope_scaling.short_factor);
  CHECK(got.rope_scaling.long_factor == want.rope_scaling.long_factor);
  CHECK(got.rope_scaling.attention_factor == want.rope_scaling.attention_factor);
  CHECK(got.rope_scaling.linear == want.rope_scaling.linear);
  CHECK(got.tie_embeddings == want.tie_embeddings);
  CHECK(got.qkv_bias == want.qkv_bias);
  CHECK(got.qk_norm == want.qk_norm);
  CHECK(got.attn_output_gate == want.attn_output_gate);
  CHECK(got.gated_norm_rank == want.gated_norm_rank);
  CHECK(got.rotary_dim == want.rotary_dim);
  CHECK(got.layer_window == want.layer_window);
  CHECK(got.layer_nope == want.layer_nope);
  CHECK(got.post_norms == want.post_norms);
  CHECK(got.norm_weight_offset == want.norm_weight_offset);
  CHECK(got.ffn_activation == want.ffn_activation);
  CHECK(got.embed_scale == want.embed_scale);
  CHECK(got.query_pre_attn_scalar == want.query_pre_attn_scalar);
  CHECK(got.attn_softcap == want.attn_softcap);
  CHECK(got.final_softcap == want.final_softcap);
  CHECK(got.rope_local_theta == want.rope_local_theta);
  CHECK(got.bos_id == want.bos_id);
  CHECK(got.eos_id == want.eos_id);
}

}  // namespace sq::test
