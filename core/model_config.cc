#include "core/model_config.h"

#include <cmath>
#include <cstdint>
#include <utility>

#include "core/error.h"

namespace sq {

namespace {
// longrope divides each rotary frequency by its own factor: one finite positive entry per pair
// (checked here, once partial_rotary_factor has fixed the rotary dims).
void ValidateLongRope(const ModelConfig& c, const std::string& source) {
  const RopeScaling& s = c.rope_scaling;
  if (!s.longrope) return;
  const size_t half = static_cast<size_t>(c.rope_dim() / 2);
  for (const auto& [list, name] :
       {std::pair{&s.short_factor, "short_factor"}, {&s.long_factor, "long_factor"}}) {
    Check(list->size() == half, source + ": rope_scaling " + name + " has " +
                                    std::to_string(list->size()) + " entries, expected " +
                                    std::to_string(half) + " (rotary dims / 2)");
    for (float v : *list) {
      Check(std::isfinite(v) && v > 0, source + ": rope_scaling " + name +
                                           " entries must be finite and positive, got " +
                                           std::to_string(v));
    }
  }
  Check(s.original_max_position > 0 && std::isfinite(s.attention_factor) && s.attention_factor > 0,
        source +
            ": rope_scaling longrope needs original_max_position_embeddings > 0 and a "
            "finite positive attention_factor, got " +
            std::to_string(s.original_max_position) + " and " + std::to_string(s.attention_factor));
}
}  // namespace

void ValidateConfig(const ModelConfig& c, const std::string& source) {
  auto positive = [&](int v, const char* name) {
    Check(v > 0, source + ": " + name + " must be positive, got " + std::to_string(v));
  };
  positive(c.hidden, "hidden_size");
  positive(c.intermediate, "intermediate_size");
  positive(c.n_layers, "num_hidden_layers");
  positive(c.n_heads, "num_attention_heads");
  positive(c.n_kv_heads, "num_key_value_heads");
  positive(c.head_dim, "head_dim");
  positive(c.vocab, "vocab_size");
  positive(c.max_position, "max_position_embeddings");
  Check(c.n_heads % c.n_kv_heads == 0,
        source + ": num_attention_heads (" + std::to_string(c.n_heads) +
            ") must be a multiple of num_key_value_heads (" + std::to_string(c.n_kv_heads) + ")");
  Check(c.head_dim % 2 == 0, source + ": head_dim must be even for RoPE, got " +
                                 std::to_string(c.head_dim));
  // eps is added to a mean square: 1 or more would swamp it; inf or NaN poison every norm.
  Check(std::isfinite(c.norm_eps) && c.norm_eps > 0 && c.norm_eps < 1,
        source + ": rms_norm_eps must be in (0, 1), got " + std::to_string(c.norm_eps));
  Check(std::isfinite(c.rope_theta) && c.rope_theta > 1,
        source + ": rope_theta must be finite and above 1, got " + std::to_string(c.rope_theta));
  Check(c.gated_norm_rank >= 0 && c.gated_norm_rank <= c.hidden,
        source + ": gated_norm_rank must be in [0, hidden_size], got " +
            std::to_string(c.gated_norm_rank));
  Check(c.rotary_dim >= 0 && c.rotary_dim <= c.head_dim && c.rotary_dim % 2 == 0,
        source + ": rotary dims (head_dim * partial_rotary_factor) must be even and in [0, " +
            "head_dim], got " + std::to_string(c.rotary_dim));
  ValidateLongRope(c, source);
  Check(c.layer_window.empty() || static_cast<int>(c.layer_window.size()) == c.n_layers,
        source + ": one sliding window per layer expected");
  for (int w : c.layer_window) {
    Check(w >= 0, source + ": sliding_window must be positive, got " + std::to_string(w));
  }
  auto non_negative = [&](float v, const char* name) {
    Check(std::isfinite(v) && v >= 0,
          source + ": " + name + " must be a finite number >= 0, got " + std::to_string(v));
  };
  non_negative(c.attn_softcap, "attn_logit_softcapping");
  non_negative(c.final_softcap, "final_logit_softcapping");
  non_negative(c.query_pre_attn_scalar, "query_pre_attn_scalar");
  Check(std::isfinite(c.embed_scale) && c.embed_scale > 0,
        source + ": the embedding scale must be finite and positive, got " +
            std::to_string(c.embed_scale));
  Check(c.rope_local_theta == 0 || (std::isfinite(c.rope_local_theta) && c.rope_local_theta > 1),
        source + ": rope_local_base_freq must be finite and above 1, got " +
            std::to_string(c.rope_local_theta));
  Check(!(c.post_norms && c.gated_norm_rank > 0),
        source + ": gated_norm_rank is not supported with Gemma's post-norms");
  Check(c.layer_nope.empty() || static_cast<int>(c.layer_nope.size()) == c.n_layers,
        source + ": no_rope_layers must have one entry per layer");
  for (const auto& [id, name] : {std::pair{c.bos_id, "bos_token_id"}, {c.eos_id, "eos_token_id"}}) {
    Check(id >= -1 && id < c.vocab, source + ": " + name + " " + std::to_string(id) +
                                        " is outside the vocab (" + std::to_string(c.vocab) + ")");
  }
  // Sanity bounds: a config claiming absurd sizes is refused before anything is allocated, and
  // every product of dims (heads * head_dim, max_position * kv width) stays far inside int64.
  Check(c.hidden <= (1 << 16) && c.intermediate <= (1 << 18) && c.n_layers <= 1024 &&
            c.vocab <= (1 << 22) && c.n_heads <= 1024 && c.head_dim <= (1 << 12) &&
            c.max_position <= (1 << 24),
        source + ": implausibly large dimensions");
  Check(int64_t{c.n_heads} * c.head_dim <= (1 << 18),
        source + ": num_attention_heads * head_dim = " +
            std::to_string(int64_t{c.n_heads} * c.head_dim) + " is implausibly large");
}

bool LocalRope(const ModelConfig& c, int layer) {
  return c.rope_local_theta != 0 && c.window(layer) != 0;
}

ModelConfig LayerRopeConfig(const ModelConfig& c, int layer) {
  if (!LocalRope(c, layer)) return c;
  ModelConfig local = c;
  local.rope_theta = c.rope_local_theta;
  local.rope_scaling = RopeScaling{};
  return local;
}

ModelConfig SliceLayers(const ModelConfig& c, int first, int count) {
  ModelConfig s = c;
  s.n_layers = count;
  auto slice = [&](auto& v) {
    if (v.empty()) return;
    Check(first >= 0 && first + count <= static_cast<int>(v.size()),
          "SliceLayers: layers [" + std::to_string(first) + ", " + std::to_string(first + count) +
              ") outside the model's " + std::to_string(v.size()));
    v.assign(v.begin() + first, v.begin() + first + count);
  };
  slice(s.layer_window);
  slice(s.layer_nope);
  return s;
}

}  // namespace sq
