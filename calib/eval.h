// Perplexity and distribution comparison over token windows.
#pragma once

#include <functional>
#include <vector>

#include "calib/dataset.h"
#include "model/model.h"

namespace sq {

struct PplResult {
  double nll = 0;          // mean negative log-likelihood (nats) per scored token
  double ppl = 0;          // exp(nll)
  double ppl_stderr = 0;   // standard error of ppl (delta method: ppl * stderr(nll))
  long tokens = 0;         // tokens scored
  double seconds = 0;
  double tokens_per_s = 0; // forward tokens (not only scored) per second
};

// Log-softmax of one row of logits, in double for stable sums.
std::vector<double> LogSoftmax(const float* logits, int n);

// -log softmax(row)[target], in double.
double TokenNll(const float* row, int n, int target);

// Running sums of per-token NLL and the perplexity they give (stderr by the delta method).
struct NllSums {
  double sum = 0, sum_sq = 0;
  long n = 0;
  void Add(double nll) {
    sum += nll;
    sum_sq += nll * nll;
    ++n;
  }
  // Throws Error when no token was scored.
  PplResult Result(double seconds, long forward_tokens) const;
  // Every rank's sums (core/dist.h), added in rank order, on every rank.
  void CombineRanks();
};

// Per-window callback: the window and its logits [T, V]; used to compare two models.
using LogitsCallback = std::function<void(int window_index, const Window&, const Mat& logits)>;

// Runs `m` over every window (layer-major, model/layer_major.h: the same logits as a window-major
// Forward) and accumulates the NLL of the scored tokens. `obs` sees every window, told by
// OnWindow. `progress` (may be null) is called after each layer with (layers done, total).
// Under mpirun the ranks split the windows and combine the sums, unless `obs` or `on_logits` is
// given: those see every window, so each rank then runs them all. `record_final_states`, if
// set, receives the states after the last layer (LayerMajorStream::record_final_states).
PplResult EvaluatePerplexity(const Model& m, const std::vector<Window>& windows,
                             ForwardObserver* obs = nullptr, const LogitsCallback& on_logits = {},
                             const std::function<void(int, int)>& progress = {},
                             std::vector<Mat>* record_final_states = nullptr);

}  // namespace sq
