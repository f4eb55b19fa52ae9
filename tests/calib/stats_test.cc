#include <catch2/catch.hpp>
#include <random>
#include <vector>

#include "calib/stats.h"

using namespace sq;

TEST_CASE("LogHistogram quantiles are within half a bin of the exact ones", "[calib]") {
  std::mt19937_64 rng(1);
  std::lognormal_distribution<float> dist(0.0f, 3.0f);
  LogHistogram h;
  std::vector<double> values;
  for (int i = 0; i < 10001; ++i) {
    values.push_back(dist(rng));
    h.Add(static_cast<float>(values.back()));
  }
  CHECK(h.count() == 10001);
  const double exact = Median(values);
  CHECK(h.Quantile(0.5) == Approx(exact).epsilon(0.033));
  LogHistogram zeros;
  zeros.Add(0.0f);
  zeros.Add(-1.0f);
  CHECK(zeros.Quantile(0.5) == 0.0);
  CHECK(LogHistogram().Quantile(0.5) == 0.0);
}

TEST_CASE("Median is exact for odd and even sizes", "[calib]") {
  CHECK(Median({3, 1, 2}) == 2);
  CHECK(Median({4, 1, 3, 2}) == 2.5);
  CHECK(Median({}) == 0);
}

TEST_CASE("ChannelStats: per-channel absmax, mean |x|, RMS and the site's kurtosis", "[calib]") {
  Mat x(4, 2);
  x << 1, -2,  //
      -1, 0,   //
      1, 0,    //
      -1, 6;
  ChannelStats s(2);
  // Two chunks give the same result as one: the statistics stream.
  s.Add(x.topRows(1));
  s.Add(x.bottomRows(3));
  CHECK(s.rows() == 4);
  CHECK(s.absmax() == std::vector<double>{1, 6});
  CHECK(s.MeanAbs() == std::vector<double>{1, 2});
  CHECK(s.Rms()[0] == Approx(1));
  CHECK(s.Rms()[1] == Approx(std::sqrt(10.0)));
  CHECK(s.AbsMax() == 6);
  CHECK(s.MedianChannelAbsMax() == 3.5);

  // A symmetric two-point distribution has kurtosis 1; a Gaussian about 3.
  ChannelStats two(1);
  Mat pm(2, 1);
  pm << 1, -1;
  two.Add(pm);
  CHECK(two.Kurtosis() == Approx(1));
  std::mt19937_64 rng(2);
  std::normal_distribution<float> n(0.5f, 2.0f);
  Mat g(20000, 3);
  for (Eigen::Index i = 0; i < g.size(); ++i) g.data()[i] = n(rng);
  ChannelStats gs(3);
  gs.Add(g);
  CHECK(gs.Kurtosis() == Approx(3).epsilon(0.05));
  CHECK(gs.MedianAbs() == Approx(1.41).epsilon(0.06));  // median |N(0.5, 2^2)|
}
