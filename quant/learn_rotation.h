// A learned residual-stream rotation (KurTail, Akhondzadeh et al. 2025): instead of drawing Q,
// descend on the orthogonal group from the randomized Hadamard that `rotate` draws (same seed)
// to a Q under which the linears' residual-stream inputs are least heavy-tailed.
//
// Objective: the mean over sampled tokens x (rows of the normed inputs of q/k/v and gate/up in
// every layer, on the calibration text) of the kurtosis of the rotated token,
//   k(x Q) = d sum_j (x Q)_j^4 / (sum_j (x Q)_j^2)^2,
// uncentered (a rotated token's mean is ~0). Q is orthogonal, so the denominator is
// |x|^4 and the gradient is exact and cheap: G = X^T (4 d (X Q)^3 / |x|^4) / N.
// Step (Wen & Yin's Cayley transform, which stays on the group exactly):
//   W = G Q^T - Q G^T (skew), Q <- (I + t/2 W)^-1 (I - t/2 W) Q,
// a descent direction (d/dt Q = -G + Q G^T Q at t = 0). t = lr / |W|_F makes lr the size of the
// step on the group, whatever the loss's scale. A step that would raise the loss is rejected
// and lr halves.
// Cost per step: three [N, d] x [d, d] products (the loss and gradient at the trial point) and
// a d x d LU solve in double; the samples are N x d floats (N = --learn-tokens).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "calib/dataset.h"
#include "model/model.h"
#include "model/observer.h"
#include "quant/hadamard.h"

namespace sq {

struct LearnRotationOptions {
  int steps = 100;
  double lr = 0.05;
  int tokens = 4096;  // sampled rows of the residual-stream inputs
  uint64_t seed = 0;  // the start: Rotation(hidden, seed), rotate's residual rotation
};

struct LossPoint {
  int step;
  double loss;
};

struct LearnedRotation {
  std::shared_ptr<const Rotation> q;  // [hidden, hidden]
  std::vector<LossPoint> curve;       // step 0 (the Hadamard) .. steps
  int rejected = 0;                   // steps that would have raised the loss
  int samples = 0;                    // rows of the objective
  // "loss 2.8828 (step 0) -> 2.1160 (step 100), 3 steps rejected; curve 0:2.8828 10:..."
  std::string Summary() const;
};

// Samples the rows of the inputs of q/k/v and gate/up, every layer, in the order the
// layer-major forward produces them (layer, window, attention then FFN, token): every k-th row
// with k = ceil(rows / max_rows), so the sample is the same however the pass is split.
class ResidualInputSampler : public ForwardObserver {
 public:
  // `rows`: how many rows the pass will produce (2 x layers x calibration tokens).
  ResidualInputSampler(int hidden, long rows, int max_rows);
  bool Wants(Site site, int layer) const override;
  void Observe(const Where& at, const Mat& x) override;
  Mat Take();  // [samples, hidden]

 private:
  int hidden_;
  long stride_, seen_ = 0;
  std::vector<float> rows_;
};

// The total ResidualInputSampler expects for `m` over `windows`.
long ResidualInputRows(const ModelConfig& c, const std::vector<Window>& windows);

// Samples of a whole model over the calibration windows (run layer-major).
Mat CollectResidualInputs(const Model& m, const std::vector<Window>& windows, int max_rows);

// The objective at q (and its Euclidean gradient into *grad when not null).
double KurtosisLoss(const Mat& x, const Mat& q, Mat* grad = nullptr);

// Descends from Rotation(x.cols(), opt.seed). Deterministic for the same samples and options.
// Prints the loss every 10 steps on stderr (as progress: `--quiet` silences it).
LearnedRotation LearnRotation(const Mat& x, const LearnRotationOptions& opt);

}  // namespace sq
