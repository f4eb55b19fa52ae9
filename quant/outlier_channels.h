// Outlier channels kept at higher precision (Atom, QUIK): the k input channels of a linear with
// the largest calibrated magnitude leave the 4-bit path. The linear becomes
//   y = inner(x with channels S zeroed) + side(x[:, S])
// where inner holds W with columns S zeroed (so neither its per-token activation scales nor its
// weight scales see the outliers) and side is the [out, k] linear W[:, S] at 8 bits (weights per
// output channel, activations per token over the k channels). Exact in float; QuantizeModel
// (QuantConfig::outlier_channels) picks S per linear input site from the calibration inputs.
//
// It is an InputTransformLinear whose transform is the mask, so everything that quantizes,
// calibrates or replaces "the linear inside the transforms" (GPTQ, +act-clip, the integer
// kernels, sink-aware rows) works on the masked 4-bit part unchanged; the side rides along.
#pragma once

#include <memory>
#include <vector>

#include "quant/quant_linear.h"

namespace sq {

class OutlierChannelsLinear : public InputTransformLinear {
 public:
  // `channels`: distinct input indices of `inner`, in the order `side` reads them; `side`
  // [out, channels.size()].
  OutlierChannelsLinear(LinearPtr inner, std::vector<int> channels, LinearPtr side);
  void Apply(const Mat& x, Mat& y) const override;            // inner(mask x) + side(x[:, S])
  void TransformInput(const Mat& x, Mat& xt) const override;  // x with columns S zeroed
  const LinearPtr& inner() const override { return inner_; }
  LinearPtr WithInner(LinearPtr inner) const override;
  const std::vector<int>& channels() const { return channels_; }
  const LinearPtr& side() const { return side_; }

 private:
  LinearPtr inner_;
  std::vector<int> channels_;
  LinearPtr side_;
};

// The k channels with the largest `absmax` (ties: the lower index), in increasing index order;
// k is clamped to absmax.size().
std::vector<int> LargestChannels(const Vec& absmax, int k);
// Per site (issue 14: "k per site chosen from the profile"): those of LargestChannels(absmax, k)
// that the profiler calls outlier channels, absmax >= ratio x the site's median channel absmax
// (calib/profiler.h's outlier_ratio, 20 there); possibly none. ratio 0: all k.
std::vector<int> OutlierChannelsOf(const Vec& absmax, int k, double ratio);
// x[:, channels] [T, k].
Mat GatherColumns(const Mat& x, const std::vector<int>& channels);
// x with columns `channels` set to zero, in place.
void ZeroColumns(Mat& x, const std::vector<int>& channels);

}  // namespace sq
