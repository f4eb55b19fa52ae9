// Streaming statistics for the profiler: memory independent of the number of tokens, results
// independent of the thread count (every sum is a double accumulated in observation order).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace sq {

// Histogram of non-negative values with 16 bins per octave over the whole float range: the
// bin of v is the top 12 bits of its float encoding (8 exponent + 4 mantissa bits). Exact to
// fill, 32 KiB, and a quantile is off by at most half a bin (< 3.2% relative).
class LogHistogram {
 public:
  static constexpr int kBins = 4096;
  void Add(float v);  // v >= 0 (negative values count as 0)
  int64_t count() const { return count_; }
  // The q-quantile (0..1) as the midpoint of its bin; 0 when empty.
  double Quantile(double q) const;
  void CombineRanks();  // every MPI rank's counts added (core/dist.h)

 private:
  std::vector<int64_t> bins_ = std::vector<int64_t>(kBins, 0);
  int64_t count_ = 0;
};

// Per-channel absmax, mean |x| and RMS of a [T, C] site, plus the moments of all its entries
// (for the site's kurtosis) and a histogram of |x| (for its median).
class ChannelStats {
 public:
  explicit ChannelStats(int channels = 0);
  void Add(const Mat& x);  // [T, C], rows are tokens

  int channels() const { return static_cast<int>(absmax_.size()); }
  int64_t rows() const { return rows_; }
  const std::vector<double>& absmax() const { return absmax_; }
  std::vector<double> MeanAbs() const;
  std::vector<double> Rms() const;
  double AbsMax() const;               // over all channels
  double MedianChannelAbsMax() const;  // exact median of the per-channel absmax
  double MedianAbs() const { return abs_hist_.Quantile(0.5); }  // approximate (LogHistogram)
  // Pearson kurtosis E[(x-m)^4] / E[(x-m)^2]^2 over every entry (3 for a Gaussian).
  double Kurtosis() const;
  // Every MPI rank's statistics combined (core/dist.h): maxima, sums in rank order, histogram.
  void CombineRanks();

 private:
  std::vector<double> absmax_, sum_abs_, sum_sq_;
  std::array<double, 5> power_sums_{};  // sum of x^0..x^4 over all entries
  int64_t rows_ = 0;
  LogHistogram abs_hist_;
};

// Exact median of `v` (mean of the two middle values for even sizes); 0 for empty input.
double Median(std::vector<double> v);
// The profile's outlier-channel test: a channel whose max |x| is at least `ratio` times its
// site's median channel max. A silent site (median 0) has none.
inline bool IsOutlierChannel(double absmax, double median, double ratio) {
  return median > 0 && absmax / median >= ratio;
}

}  // namespace sq
