// ModelWeights: per-layer structs of non-owning views. One owner (`storage`) keeps the bytes
// alive: memory-mapped files for a loaded checkpoint, owned float buffers for tensors a
// transform rewrote. Weights stay in their stored dtype (F32/F16/BF16) until a layer uses them.
//
// Legend: d = hidden, f = intermediate, H = n_heads, Hkv = n_kv_heads, hd = head_dim,
//         V = vocab, r = gated_norm_rank. Linear weights are [out, in] as in PyTorch.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "core/model_config.h"

namespace sq {

// GatedNorm's low-rank gate after a norm: out = y * sigmoid(up @ silu(down @ y)).
struct NormGate {
  TensorView down;  // [r, d]
  TensorView up;    // [d, r]
  bool present() const { return !down.empty(); }
};

struct LayerWeights {
  TensorView attn_norm;  // [d]
  NormGate attn_norm_gate;
  TensorView wq;         // [H*hd, d], or [2*H*hd, d] with gated attention (per head: query | gate)
  TensorView wk;         // [Hkv*hd, d]
  TensorView wv;         // [Hkv*hd, d]
  TensorView bq, bk, bv; // [H*hd], [Hkv*hd], [Hkv*hd]; Qwen2 only, else empty
  TensorView q_norm;     // [hd]; Qwen3 only
  TensorView k_norm;     // [hd]; Qwen3 only
  TensorView wo;         // [d, H*hd]
  TensorView attn_post_norm;  // [d]; Gemma: RMSNorm of the attention output, before the add
  TensorView ffn_norm;   // [d]
  NormGate ffn_norm_gate;
  TensorView w_gate;     // [f, d]
  TensorView w_up;       // [f, d]
  TensorView w_down;     // [d, f]
  TensorView ffn_post_norm;  // [d]; Gemma: RMSNorm of the FFN output, before the add
};

// Tensors are named by role inside the engine; HF strings live only in formats/.
enum class Role {
  kEmbed,
  kFinalNorm,
  kFinalNormGateDown,
  kFinalNormGateUp,
  kLmHead,
  kAttnNorm,
  kAttnNormGateDown,
  kAttnNormGateUp,
  kAttnQ,
  kAttnK,
  kAttnV,
  kAttnQBias,
  kAttnKBias,
  kAttnVBias,
  kAttnQNorm,
  kAttnKNorm,
  kAttnO,
  kFfnNorm,
  kFfnNormGateDown,
  kFfnNormGateUp,
  kFfnGate,
  kFfnUp,
  kFfnDown,
  kAttnPostNorm,
  kFfnPostNorm,
};
struct TensorId {
  int layer = -1;  // -1 for model-level tensors
  Role role = Role::kEmbed;
};
const char* RoleName(Role r);
// RMSNorm weights: the per-layer and final norms, Qwen3/Gemma 3 q/k norms, Gemma's post-norms.
bool IsNormRole(Role r);  // "attn_q", ... (for messages and reports)
// The shape `c` implies for a tensor of role `r`.
std::vector<int64_t> ExpectedShape(const ModelConfig& c, Role r);

struct ModelWeights {
  TensorView embed;       // [V, d]
  std::vector<LayerWeights> layers;
  TensorView final_norm;  // [d]
  NormGate final_norm_gate;
  TensorView lm_head;     // [V, d]; the same bytes as `embed` when tied
  // Owners of the bytes the views point into (mmaps, OwnedTensor). Copying ModelWeights
  // shares them, so a transform can copy, replace a few views and keep the rest.
  std::vector<std::shared_ptr<const void>> storage;

  // Stores `m` as an owned F32 tensor of `shape` and returns a view of it.
  TensorView Own(Mat m, std::vector<int64_t> shape);  // moves an rvalue in
};

// Calls fn for every present tensor (absent optional tensors are skipped). A tied lm_head
// is visited once as kEmbed only when `skip_tied` is true.
void ForEachTensor(const ModelConfig& c, const ModelWeights& w,
                   const std::function<void(TensorId, const TensorView&)>& fn,
                   bool skip_tied = true);
void ForEachTensor(const ModelConfig& c, ModelWeights& w,
                   const std::function<void(TensorId, TensorView&)>& fn, bool skip_tied = true);

// Checks every tensor the config requires is present with the expected shape and a float
// dtype; throws Error naming `source` and the tensor (`name_of` maps an id to its file name).
void ValidateWeights(const ModelConfig& c, const ModelWeights& w, const std::string& source,
                     const std::function<std::string(TensorId)>& name_of);

// Refuses a NaN or Inf in any stored tensor (embeddings, norms, biases and every linear),
// naming the tensor and the first bad element: "layer 0 attn_norm [64] has nan at [3]: WHY".
// Widened in blocks, so it costs one read of the weights; meant for commands that read or write
// every weight anyway (export), not for loading.
void CheckFiniteTensors(const ModelConfig& c, const ModelWeights& w, const std::string& why);

}  // namespace sq
