#include "calib/stats.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "core/dist.h"

namespace sq {

void LogHistogram::Add(float v) {
  // Non-negative floats order like their bit patterns, so the top bits are a log-scale bin.
  const uint32_t bits = v > 0 ? std::bit_cast<uint32_t>(v) : 0u;
  ++bins_[bits >> 19];
  ++count_;
}

double LogHistogram::Quantile(double q) const {
  if (count_ == 0) return 0;
  const double target = std::clamp(q, 0.0, 1.0) * static_cast<double>(count_ - 1);
  int64_t seen = 0;
  for (int b = 0; b < kBins; ++b) {
    seen += bins_[b];
    if (static_cast<double>(seen) > target) {
      if (b == 0) return 0;
      const double lo = std::bit_cast<float>(static_cast<uint32_t>(b) << 19);
      const double hi = std::bit_cast<float>(static_cast<uint32_t>(b + 1) << 19);
      return 0.5 * (lo + hi);
    }
  }
  return 0;
}

void LogHistogram::CombineRanks() {
  dist::SumInRankOrder(bins_);
  int64_t n[] = {count_};
  dist::SumInRankOrder(n);
  count_ = n[0];
}

void ChannelStats::CombineRanks() {
  dist::Max(absmax_);
  dist::SumInRankOrder(sum_abs_);
  dist::SumInRankOrder(sum_sq_);
  dist::SumInRankOrder(power_sums_);
  int64_t rows[] = {rows_};
  dist::SumInRankOrder(rows);
  rows_ = rows[0];
  abs_hist_.CombineRanks();
}

ChannelStats::ChannelStats(int channels)
    : absmax_(channels, 0.0), sum_abs_(channels, 0.0), sum_sq_(channels, 0.0) {}

void ChannelStats::Add(const Mat& x) {
  const int C = channels();
  for (Eigen::Index t = 0; t < x.rows(); ++t) {
    const float* row = x.row(t).data();
    double p1 = 0, p2 = 0, p3 = 0, p4 = 0;  // this row's power sums, added once per row
    for (int c = 0; c < C; ++c) {
      const double v = row[c], a = std::abs(v), v2 = v * v;
      absmax_[c] = std::max(absmax_[c], a);
      sum_abs_[c] += a;
      sum_sq_[c] += v2;
      p1 += v;
      p2 += v2;
      p3 += v2 * v;
      p4 += v2 * v2;
      abs_hist_.Add(static_cast<float>(a));
    }
    power_sums_[0] += C;
    power_sums_[1] += p1;
    power_sums_[2] += p2;
    power_sums_[3] += p3;
    power_sums_[4] += p4;
  }
  rows_ += x.rows();
}

std::vector<double> ChannelStats::MeanAbs() const {
  std::vector<double> out(sum_abs_.size(), 0.0);
  if (rows_ == 0) return out;
  for (size_t c = 0; c < out.size(); ++c) out[c] = sum_abs_[c] / rows_;
  return out;
}

std::vector<double> ChannelStats::Rms() const {
  std::vector<double> out(sum_sq_.size(), 0.0);
  if (rows_ == 0) return out;
  for (size_t c = 0; c < out.size(); ++c) out[c] = std::sqrt(sum_sq_[c] / rows_);
  return out;
}

double ChannelStats::AbsMax() const {
  return absmax_.empty() ? 0 : *std::max_element(absmax_.begin(), absmax_.end());
}

double ChannelStats::MedianChannelAbsMax() const { return Median(absmax_); }

double ChannelStats::Kurtosis() const {
  const double n = power_sums_[0];
  if (n < 2) return 0;
  const double m = power_sums_[1] / n, e2 = power_sums_[2] / n, e3 = power_sums_[3] / n,
               e4 = power_sums_[4] / n;
  // Central moments from raw moments (exact algebra; double keeps it accurate for |x| << 1e4).
  const double var = e2 - m * m;
  const double m4 = e4 - 4 * m * e3 + 6 * m * m * e2 - 3 * m * m * m * m;
  return var > 0 ? m4 / (var * var) : 0;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  const size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + mid, v.end());
  const double hi = v[mid];
  if (v.size() % 2 == 1) return hi;
  const double lo = *std::max_element(v.begin(), v.begin() + mid);
  return 0.5 * (lo + hi);
}

}  // namespace sq
