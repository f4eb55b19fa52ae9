// llama2.c legacy checkpoints (Karpathy's run.c "version 0" format): a header of 7 int32
// (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size
// means a separate classifier follows), then float32 arrays:
//   token_embedding [V, d], rms_att [L, d], wq [L, d, d], wk [L, kv_dim, d], wv [L, kv_dim, d],
//   wo [L, d, d], rms_ffn [L, d], w1 [L, f, d] (gate), w2 [L, d, f] (down), w3 [L, f, d] (up),
//   rms_final [d], freq_cis_real [seq_len, hd/2], freq_cis_imag [seq_len, hd/2], wcls [V, d]?
// RoPE rotates ADJACENT pairs (x[2i], x[2i+1]).
#pragma once

#include <string>

#include "core/model_config.h"
#include "core/model_weights.h"

namespace sq {

// Maps `path` and fills `config` (rope_pairing kAdjacent) and `weights` (views into the map,
// which is pushed into weights->storage). Throws Error naming the file on a bad header or a
// size that does not match the header.
void LoadLlama2c(const std::string& path, ModelConfig* config, ModelWeights* weights);

// tokenizer.bin or tok<vocab>.bin beside `model_path`, or "" when neither exists.
std::string FindLlama2cTokenizer(const std::string& model_path, int vocab);

// Reorders the rows of a q_proj / k_proj weight [n_heads * hd, in] (or a bias [n_heads * hd])
// from adjacent-pair RoPE to rotate_half, per head: new rows [0, 2, 4, ..., 1, 3, 5, ...], as
// HF's convert_llama_weights_to_hf does with
// `w.view(n_heads, hd / 2, 2, in).transpose(1, 2)`.
Mat PermuteAdjacentToHalf(const Mat& w, int n_heads);
// The inverse (rotate_half -> adjacent pairs).
Mat PermuteHalfToAdjacent(const Mat& w, int n_heads);

// A llama2.c model as an HF Llama: q/k rows permuted to rotate_half, rope_pairing kHalf. The
// returned weights own their permuted tensors and share the rest with `w`.
void Llama2cToHf(const ModelConfig& c, const ModelWeights& w, ModelConfig* out_config,
                 ModelWeights* out_weights);

struct ConvertSummary {
  ModelConfig config;         // of the written HF model (rope_pairing kHalf)
  std::string tokenizer_bin;  // the llama2.c tokenizer that was converted
};
// `sinkquant convert`: writes `out_dir` as an HF Llama folder: config.json, model.safetensors
// (F32, q/k rows permuted to rotate_half), tokenizer.json and tokenizer_config.json
// (add_bos_token). `tokenizer_bin` "" = tokenizer.bin / tok<V>.bin beside the model. Everything
// is written into a temporary sibling folder that is renamed into place at the end. An
// existing non-empty `out_dir` is refused unless `force` (then it is replaced).
ConvertSummary ConvertLlama2cToHf(const std::string& model_bin, const std::string& tokenizer_bin,
                                  const std::string& out_dir, bool force);

}  // namespace sq
