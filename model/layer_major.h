// Layer-major execution: every window through layer 0, then every window through layer 1, and
// so on, keeping the hidden states of all windows ([tokens, hidden] each, small next to the
// weights). Each window goes through exactly the calls Forward makes (Embed, ForwardBlock per
// layer, Head) on the same shapes, so logits and observations are bit-identical to the
// window-major Forward; only the loop order changes. What that buys at 1B-8B sizes: a layer's
// weights are read (and widened) while they are hot and then released (ReleaseLayerPages), so
// resident memory is one layer plus the states instead of the whole mapped checkpoint, and each
// step that reduces over windows (Hessians, statistics) has all windows of a layer at hand.
// Several models advance together (float and quantized streams of a comparison).
#pragma once

#include <functional>
#include <span>
#include <vector>

#include "model/model.h"

namespace sq {

struct LayerMajorStream {
  const Model* model = nullptr;
  ForwardObserver* obs = nullptr;  // may be null; told each window by OnWindow
  int windows = -1;                // run only the first n windows (-1: all)
  bool logits = true;              // compute the head (false: only the observer's sites matter)
  double* seconds = nullptr;       // if set, receives the time spent running this stream
  // Replay: this stream's states after its last layer from an earlier run of the same model over
  // the same windows (this rank's block, in order). Its layers are skipped and only the head
  // runs, on the same states, so its logits are the same bit for bit. No observer.
  const std::vector<Mat>* final_states = nullptr;
  // Record: receives this stream's states after its last layer (this rank's block), to replay.
  std::vector<Mat>* record_final_states = nullptr;
};

// logits[s] is stream s's [T, V] logits of the window (empty for streams without logits or
// windows past their count).
using LayerMajorLogits = std::function<void(int window, std::span<const Mat> logits)>;
// Called after each layer with (layers done, total) and the tokens a layer processed.
using LayerMajorProgress = std::function<void(int layers_done, int total, long tokens)>;

// Lets a stream's model exist one layer at a time (quant/recipe_pipeline.h): `before_layer(l)`
// materializes layer l of the streams' models, `after_layer(l)` drops it, `before_head()` readies
// the final norm and lm_head after the last layer. Each may be empty.
struct LayerMajorHooks {
  std::function<void(int layer)> before_layer, after_layer;
  std::function<void()> before_head;
};

// kRankBlocks: under mpirun each rank runs only its block of the windows (core/dist.h; one
// rank: all of them) and at the end every observer's CombineRanks is called, so observers end
// with the statistics of all windows. Window indices stay the file's; `on_logits` sees this
// rank's windows only, so whoever accumulates there combines the ranks itself.
enum class WindowSplit { kAll, kRankBlocks };

// Runs every stream over `windows`, layer by layer; calls `on_logits` once per window after the
// last layer, in window order (one window's logits are alive at a time).
void ForwardLayerMajor(std::span<const LayerMajorStream> streams,
                       const std::vector<std::span<const int>>& windows,
                       const LayerMajorLogits& on_logits, const LayerMajorProgress& progress = {},
                       const LayerMajorHooks& hooks = {},
                       WindowSplit split = WindowSplit::kAll);

// Runs `m` over `windows` for `obs` alone (no logits unless it wants the head's sites).
void ObserveLayerMajor(const Model& m, const std::vector<std::span<const int>>& windows,
                       ForwardObserver& obs);

// Drops the resident pages of layer `l`'s memory-mapped weights of `m` (they stay in the page
// cache and fault back in if read again); owned tensors are untouched.
void ReleaseLayerPages(const Model& m, int l);

}  // namespace sq
