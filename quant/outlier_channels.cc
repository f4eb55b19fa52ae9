#include "quant/outlier_channels.h"

#include <algorithm>
#include <numeric>
#include <string>

#include "calib/stats.h"
#include "core/error.h"

namespace sq {

OutlierChannelsLinear::OutlierChannelsLinear(LinearPtr inner, std::vector<int> channels,
                                             LinearPtr side)
    : inner_(std::move(inner)), channels_(std::move(channels)), side_(std::move(side)) {
  Check(inner_ && side_, "OutlierChannelsLinear: null linear");
  const int in = inner_->in_features();
  Check(side_->in_features() == static_cast<int>(channels_.size()) &&
            side_->out_features() == inner_->out_features(),
        "OutlierChannelsLinear: side linear [" + std::to_string(side_->out_features()) + ", " +
            std::to_string(side_->in_features()) + "] for " + std::to_string(channels_.size()) +
            " channels of a [" + std::to_string(inner_->out_features()) + ", " +
            std::to_string(in) + "] linear");
  for (int c : channels_) {
    Check(c >= 0 && c < in, "OutlierChannelsLinear: channel " + std::to_string(c) +
                                " outside [0, " + std::to_string(in) + ")");
  }
}

void OutlierChannelsLinear::TransformInput(const Mat& x, Mat& xt) const {
  xt = x;
  ZeroColumns(xt, channels_);
}

void OutlierChannelsLinear::Apply(const Mat& x, Mat& y) const {
  InputTransformLinear::Apply(x, y);
  Mat ys;
  side_->Apply(GatherColumns(x, channels_), ys);
  y += ys;
}

LinearPtr OutlierChannelsLinear::WithInner(LinearPtr inner) const {
  return std::make_shared<OutlierChannelsLinear>(std::move(inner), channels_, side_);
}

std::vector<int> LargestChannels(const Vec& absmax, int k) {
  std::vector<int> idx(absmax.size());
  std::iota(idx.begin(), idx.end(), 0);
  k = std::clamp(k, 0, static_cast<int>(idx.size()));
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int a, int b) {
    return absmax[a] != absmax[b] ? absmax[a] > absmax[b] : a < b;
  });
  idx.resize(k);
  std::sort(idx.begin(), idx.end());
  return idx;
}

std::vector<int> OutlierChannelsOf(const Vec& absmax, int k, double ratio) {
  if (ratio > 0) {
    const double median = Median(std::vector<double>(absmax.begin(), absmax.end()));
    int outliers = 0;
    for (float v : absmax) outliers += IsOutlierChannel(v, median, ratio);
    k = std::min(k, outliers);
  }
  return LargestChannels(absmax, k);
}

Mat GatherColumns(const Mat& x, const std::vector<int>& channels) {
  Mat out(x.rows(), static_cast<Eigen::Index>(channels.size()));
  for (size_t j = 0; j < channels.size(); ++j) out.col(j) = x.col(channels[j]);
  return out;
}

void ZeroColumns(Mat& x, const std::vector<int>& channels) {
  for (int c : channels) x.col(c).setZero();
}

}  // namespace sq
