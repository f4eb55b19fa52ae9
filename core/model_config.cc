#include "core/model_config.h"

#include "core/error.h"

namespace sq {

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
  Check(c.norm_eps > 0, source + ": rms_norm_eps must be positive");
  Check(c.rope_theta > 0, source + ": rope_theta must be positive");
  Check(c.gated_norm_rank >= 0, source + ": gated_norm_rank must be >= 0");
  // Sanity bounds: a config claiming absurd sizes is refused before anything is allocated.
  Check(c.hidden <= (1 << 16) && c.intermediate <= (1 << 18) && c.n_layers <= 1024 &&
            c.vocab <= (1 << 22) && c.n_heads <= 1024,
        source + ": implausibly large dimensions");
}

}  // namespace sq
