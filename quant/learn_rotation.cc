#include "quant/learn_rotation.h"

#include <cmath>
#include <cstdio>
#include <iostream>

#include "core/error.h"
#include "core/parallel_blocks.h"
#include "core/progress.h"
#include "model/layer_major.h"

namespace sq {

namespace {

constexpr int kPrintEvery = 10;  // loss lines on stderr and points in Summary()'s curve

std::string Fixed4(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4f", v);
  return buf;
}

// One Cayley step from q along -grad of size lr on the group (see the header). W = G Q^T - Q G^T
// is A - A^T for A = G Q^T: one product, and exactly skew-symmetric. The products and the
// solve run in fixed column blocks (core/parallel_blocks.h): at d = 2048 they are most of a
// step, and Eigen's LU runs on one core.
Eigen::MatrixXd CayleyStep(const Eigen::MatrixXd& q, const Eigen::MatrixXd& g, double lr) {
  const Eigen::Index n = q.rows();
  Eigen::MatrixXd a(n, n);
  ForEachBlock(n, [&](Eigen::Index c0, Eigen::Index m) {
    a.middleCols(c0, m).noalias() = g * q.middleRows(c0, m).transpose();
  });
  const Eigen::MatrixXd w = a - a.transpose();
  const double t = lr / w.norm();
  Eigen::MatrixXd b = q;
  ForEachBlock(n, [&](Eigen::Index c0, Eigen::Index m) {
    b.middleCols(c0, m).noalias() -= (t / 2) * (w * q.middleCols(c0, m));
  });
  const Eigen::PartialPivLU<Eigen::MatrixXd> lu(Eigen::MatrixXd::Identity(n, n) + (t / 2) * w);
  Eigen::MatrixXd next(n, n);
  ForEachBlock(n, [&](Eigen::Index c0, Eigen::Index m) {
    next.middleCols(c0, m) = lu.solve(b.middleCols(c0, m));
  });
  return next;
}

void PrintLoss(const LossPoint& p, int steps, double lr) {
  if (!ProgressEnabled()) return;
  std::cerr << "learn-rotation: step " << p.step << "/" << steps << " loss " << Fixed4(p.loss)
            << " (lr " << lr << ")\n";
}

}  // namespace

ResidualInputSampler::ResidualInputSampler(int hidden, long rows, int max_rows)
    : hidden_(hidden), stride_(std::max(1L, (rows + max_rows - 1) / std::max(1, max_rows))) {}

bool ResidualInputSampler::Wants(Site site, int) const {
  return site == Site::kAttnInput || site == Site::kFfnInput;
}

void ResidualInputSampler::Observe(const Where& at, const Mat& x) {
  if (!Wants(at.site, at.layer)) return;
  Check(x.cols() == hidden_, "learn-rotation: an input of " + std::to_string(x.cols()) +
                                 " channels, expected " + std::to_string(hidden_));
  for (Eigen::Index t = 0; t < x.rows(); ++t, ++seen_) {
    // A zero row has no kurtosis (and no direction to rotate).
    if (seen_ % stride_ != 0 || x.row(t).squaredNorm() == 0) continue;
    rows_.insert(rows_.end(), x.row(t).data(), x.row(t).data() + hidden_);
  }
}

Mat ResidualInputSampler::Take() {
  const Eigen::Index n = static_cast<Eigen::Index>(rows_.size()) / hidden_;
  Mat m = ConstMatMap(rows_.data(), n, hidden_);
  rows_.clear();
  return m;
}

long ResidualInputRows(const ModelConfig& c, const std::vector<Window>& windows) {
  long tokens = 0;
  for (const Window& w : windows) tokens += static_cast<long>(w.tokens.size());
  return 2L * c.n_layers * tokens;
}

Mat CollectResidualInputs(const Model& m, const std::vector<Window>& windows, int max_rows) {
  Check(!windows.empty(), "learn-rotation: no calibration windows (--calib FILE)");
  ResidualInputSampler s(m.config.hidden, ResidualInputRows(m.config, windows), max_rows);
  ObserveLayerMajor(m, TokenSpans(windows), s);
  return s.Take();
}

double KurtosisLoss(const Mat& x, const Mat& q, Mat* grad) {
  Mat y(x.rows(), q.cols());
  ForEachBlock(q.cols(), [&](Eigen::Index c0, Eigen::Index m) {
    y.middleCols(c0, m).noalias() = x * q.middleCols(c0, m);
  });
  const Eigen::Index n = x.rows(), d = x.cols();
  // |x Q|^4 = |x|^4: the denominator of each token's kurtosis does not depend on Q.
  const Eigen::ArrayXf inv_norm4 = x.rowwise().squaredNorm().array().square().inverse();
  const Eigen::ArrayXf fourth = y.array().square().square().rowwise().sum();
  const double loss = static_cast<double>(d) * (fourth * inv_norm4).cast<double>().sum() / n;
  if (grad) {
    const float scale = 4.0f * static_cast<float>(d) / static_cast<float>(n);
    const Mat dy = (y.array().cube().colwise() * (inv_norm4 * scale)).matrix();
    grad->resize(d, d);
    ForEachBlock(d, [&](Eigen::Index c0, Eigen::Index m) {
      grad->middleCols(c0, m).noalias() = x.transpose() * dy.middleCols(c0, m);
    });
  }
  return loss;
}

LearnedRotation LearnRotation(const Mat& x, const LearnRotationOptions& opt) {
  Check(x.rows() > 0, "learn-rotation: no activation samples");
  LearnedRotation out;
  out.samples = static_cast<int>(x.rows());
  const int d = static_cast<int>(x.cols());
  const Rotation start(d, opt.seed);
  Eigen::MatrixXd q = start.matrix().cast<double>();
  Mat g;
  double loss = KurtosisLoss(x, q.cast<float>(), &g);
  out.curve.push_back({0, loss});
  PrintLoss(out.curve.back(), opt.steps, opt.lr);
  double lr = opt.lr;
  for (int step = 1; step <= opt.steps; ++step) {
    const Eigen::MatrixXd trial = CayleyStep(q, g.cast<double>(), lr);
    Mat trial_g;
    const double trial_loss = KurtosisLoss(x, trial.cast<float>(), &trial_g);
    if (trial_loss < loss) {
      q = trial;
      g = std::move(trial_g);
      loss = trial_loss;
    } else {
      ++out.rejected;
      lr /= 2;
    }
    out.curve.push_back({step, loss});
    if (step % kPrintEvery == 0 || step == opt.steps) PrintLoss(out.curve.back(), opt.steps, lr);
  }
  out.q = std::make_shared<const Rotation>(
      q.cast<float>(), "learned " + std::to_string(d) + " (Cayley descent on kurtosis from " +
                           start.Describe() + ", " + std::to_string(opt.steps) +
                           " steps, loss " + Fixed4(out.curve.front().loss) + " -> " +
                           Fixed4(loss) + ")");
  return out;
}

std::string LearnedRotation::Summary() const {
  std::string s = "loss " + Fixed4(curve.front().loss) + " (step 0) -> " +
                  Fixed4(curve.back().loss) + " (step " + std::to_string(curve.back().step) +
                  ") on " + std::to_string(samples) + " sampled tokens, " +
                  std::to_string(rejected) + " steps rejected; curve";
  for (const LossPoint& p : curve) {
    if (p.step % kPrintEvery != 0 && &p != &curve.back()) continue;
    s += " " + std::to_string(p.step) + ":" + Fixed4(p.loss);
  }
  return s;
}

}  // namespace sq
