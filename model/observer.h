// ForwardObserver: calib/ implements it, model/ calls it. The model never knows who listens.
#pragma once

#include <span>

#include "core/dist.h"
#include "core/error.h"
#include "core/tensor.h"

namespace sq {

// Where in the forward pass a tensor is observed. Rows are always tokens (positions 0..T-1)
// except kAttnProbs, whose rows are queries and columns keys.
enum class Site {
  kResidual,    // [T, d]   residual stream after block `layer` (layer -1: the embeddings)
  kAttnInput,   // [T, d]   input of q/k/v (output of the attention norm, after its gate)
  kQuery,       // [T, hd]  one head's query after q-norm and RoPE (`head` set)
  kKey,         // [T, hd]  one KV head's key after k-norm and RoPE (`head` = kv head)
  kValue,       // [T, hd]  one KV head's value (`head` = kv head)
  kAttnProbs,   // [T, T]   one head's softmax probabilities (`head` set), causal
  kAttnGate,    // [T, H*hd] sigmoid of the output gate (gated attention only)
  kOInput,      // [T, H*hd] input of o_proj (attention output, after the gate)
  kFfnInput,    // [T, d]   input of gate/up (output of the FFN norm, after its gate)
  kDownInput,   // [T, f]   input of down_proj (silu(gate) * up)
  kNormGate,    // [T, d]   GatedNorm sigmoid gate values; `head` 0 = attn norm, 1 = ffn norm
  kHeadInput,   // [T, d]   input of lm_head (final norm output); layer = n_layers
  kLogits,      // [T, V]   layer = n_layers
};
const char* SiteName(Site s);

struct Where {
  Site site;
  int layer;
  int head = -1;  // for per-head sites
};

class ForwardObserver {
 public:
  virtual ~ForwardObserver() = default;
  // Asked before the engine computes anything extra for a site (per-head probabilities are
  // only materialised when someone wants them).
  virtual bool Wants(Site site, int layer) const { return true; }
  virtual void Observe(const Where& at, const Mat& x) = 0;
  // Layer-major runs (model/layer_major.h) interleave windows: before each piece of window
  // `window`'s pass (embedding, one block, the head) they say which window the next sites
  // belong to. A window-major Forward never calls it.
  virtual void OnWindow(int window, std::span<const int> tokens) {}
  // After a run split across processes (WindowSplit::kRankBlocks, model/layer_major.h), each
  // rank saw only its block of windows: combine the statistics so that every rank holds those
  // of all windows. An observer that cannot must not be run split (checked here).
  virtual void CombineRanks() {
    Check(dist::Size() == 1, "this statistic cannot be combined across MPI ranks");
  }
};

}  // namespace sq
