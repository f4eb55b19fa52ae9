#include <catch2/catch.hpp>

#include "core/threads.h"
#include "quant/gptq.h"
#include "quant/quantizer.h"
#include "tests/test_util.h"

using namespace sq;
using sq::test::RandomMat;

namespace {
// Calibration inputs with correlated, unequally scaled channels (as real activations are):
// X = Z A with a random mixing matrix and a few loud channels.
Mat CorrelatedInputs(int tokens, int in, uint64_t seed) {
  Mat x = RandomMat(tokens, in, seed) * RandomMat(in, in, seed + 1, 1.0f / std::sqrt(float(in)));
  for (int c = 0; c < in; c += 17) x.col(c) *= 6.0f;
  return x;
}

double OutputError(const Mat& x, const Mat& w, const Mat& wq) {
  return (x * w.transpose() - x * wq.transpose()).squaredNorm() / (x * w.transpose()).squaredNorm();
}
}  // namespace

TEST_CASE("HessianAccumulator gives 2 X^T X / N over all added rows", "[quant]") {
  const Mat a = RandomMat(10, 6, 1), b = RandomMat(7, 6, 2);
  HessianAccumulator acc(6);
  acc.Add(a);
  acc.Add(b);
  Mat x(17, 6);
  x << a, b;
  const Eigen::MatrixXd expect = 2.0 * (x.cast<double>().transpose() * x.cast<double>()) / 17.0;
  CHECK(acc.rows() == 17);
  CHECK((acc.H() - expect).cwiseAbs().maxCoeff() < 1e-9);
}

TEST_CASE("GptqInverseFactor is the upper Cholesky factor of the damped inverse Hessian", "[quant]") {
  // 600 columns: several blocks of the blocked Cholesky and of the triangular inverse.
  for (const int k : {40, 600}) {
    const Mat x = CorrelatedInputs(3 * k, k, 3);
    HessianAccumulator acc(k);
    acc.Add(x.topRows(k));
    acc.Add(x.bottomRows(2 * k));
    const Eigen::MatrixXd h = acc.H();
    const Eigen::MatrixXd xd = x.cast<double>();
    const Eigen::MatrixXd direct = 2.0 / (3 * k) * xd.transpose() * xd;
    CHECK((h - direct).cwiseAbs().maxCoeff() < 1e-12 * direct.cwiseAbs().maxCoeff());
    double used = 0;
    const Eigen::MatrixXd u = GptqInverseFactor(h, 0.01, &used).cast<double>();
    CHECK(used == 0.01);
    Eigen::MatrixXd damped = h;
    damped.diagonal().array() += 0.01 * h.diagonal().mean();
    const Eigen::MatrixXd inv = damped.inverse();
    CHECK((u.transpose() * u - inv).cwiseAbs().maxCoeff() < 1e-5 * inv.cwiseAbs().maxCoeff());
    CHECK(u.triangularView<Eigen::StrictlyLower>().toDenseMatrix().isZero(0));
    CHECK((u.diagonal().array() > 0).all());
    // The parallel blocks are fixed: one thread gives the same bits.
    const int threads = NumThreads();
    SetNumThreads(1);
    HessianAccumulator acc1(k);
    acc1.Add(x.topRows(k));
    acc1.Add(x.bottomRows(2 * k));
    const Eigen::MatrixXf u1 = GptqInverseFactor(acc1.H(), 0.01, nullptr);
    SetNumThreads(threads);
    CHECK(acc1.H() == h);
    CHECK(u1 == u.cast<float>());
    // Indefinite at dampening 0.01 but not at 0.1: the retry starts again from H itself.
    Eigen::MatrixXd shifted = h;
    shifted.diagonal().array() -= 0.05 * h.diagonal().mean();
    const Eigen::MatrixXd us = GptqInverseFactor(shifted, 0.01, &used).cast<double>();
    CHECK(used == Approx(0.1));
    Eigen::MatrixXd damped_s = shifted;
    damped_s.diagonal().array() += used * shifted.diagonal().mean();
    const Eigen::MatrixXd inv_s = damped_s.inverse();
    CHECK((us.transpose() * us - inv_s).cwiseAbs().maxCoeff() < 1e-4 * inv_s.cwiseAbs().maxCoeff());
  }
}

TEST_CASE("GPTQ with a diagonal Hessian is exactly RTN (no error to propagate)", "[quant]") {
  const Mat w = RandomMat(24, 64, 9);
  const Eigen::MatrixXd h = Eigen::MatrixXd::Identity(64, 64) * 3.0;
  for (int group : {0, 16}) {
    const WeightQuantSpec spec{4, group, true, false};
    const QuantizedWeight g = GptqQuantize(w, h, spec, {0.01, 32, false});
    const QuantizedWeight r = QuantizeRtn(w, spec);
    CHECK(g.codes == r.codes);
    CHECK(g.scales == r.scales);
  }
}

TEST_CASE("GPTQ on a fixed layer and Hessian has lower output error than RTN", "[quant]") {
  const int out = 64, in = 160;  // 160 = 128 + 32: two lazy blocks, a short last group at G=128
  const Mat w = RandomMat(out, in, 21, 0.1f);
  const Mat x = CorrelatedInputs(1024, in, 22);
  HessianAccumulator acc(in);
  acc.Add(x);
  const Eigen::MatrixXd h = acc.H();
  struct Case {
    WeightQuantSpec spec;
    bool act_order;
  };
  const Case cases[] = {{{4, 0, true, false}, false},  {{4, 0, true, true}, false},
                        {{4, 32, true, false}, false}, {{4, 128, true, true}, false},
                        {{4, 32, false, false}, false}, {{4, 32, true, false}, true},
                        {{4, 0, true, true}, true},    {{3, 0, true, false}, false}};
  for (const Case& c : cases) {
    const double rtn = OutputError(x, w, QuantizeRtn(w, c.spec).Dequantize());
    GptqStats stats;
    const double gptq = OutputError(
        x, w, GptqQuantize(w, h, c.spec, {0.01, 128, c.act_order}, &stats).Dequantize());
    INFO(c.spec.Describe() << (c.act_order ? " act-order" : "") << ": rtn " << rtn << " gptq "
                           << gptq);
    CHECK(gptq < 0.8 * rtn);
    CHECK(stats.dead_columns == 0);
    CHECK(stats.damp_used == 0.01);
  }
}

TEST_CASE("GPTQ zeroes dead input columns and survives a singular Hessian", "[quant]") {
  const int out = 8, in = 32;
  const Mat w = RandomMat(out, in, 31);
  Mat x = RandomMat(4, in, 32);  // rank 4 < 32: singular without dampening
  x.col(5).setZero();
  HessianAccumulator acc(in);
  acc.Add(x);
  GptqStats stats;
  const Mat d = GptqQuantize(w, acc.H(), {4, 0, true, true}, {0.01, 8, true}, &stats).Dequantize();
  CHECK(stats.dead_columns == 1);
  CHECK(d.col(5).isZero(0));
  CHECK(d.allFinite());
}
