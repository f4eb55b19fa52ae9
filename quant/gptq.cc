#include "quant/gptq.h"

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "core/dist.h"
#include "core/error.h"

namespace sq {

void HessianAccumulator::Add(const Mat& x) {
  Check(x.cols() == h_.cols(), "HessianAccumulator: input has " + std::to_string(x.cols()) +
                                   " columns, expected " + std::to_string(h_.cols()));
  const Eigen::MatrixXd xd = x.cast<double>();
  h_.selfadjointView<Eigen::Lower>().rankUpdate(xd.transpose());
  n_ += x.rows();
}

void HessianAccumulator::AddInRankOrder(const std::vector<Mat>& rows) {
  // Floating-point addition is not associative: per-rank partial sums added afterwards would
  // round differently from one process, so the accumulator itself travels rank to rank.
  int64_t n[] = {0};
  for (const Mat& x : rows) n[0] += x.rows();
  dist::SumInRankOrder(n);
  dist::FoldInRankOrder(std::span<double>(h_.data(), static_cast<size_t>(h_.size())), [&] {
    for (const Mat& x : rows) Add(x);
  });
  n_ = n[0];
}

Eigen::MatrixXd HessianAccumulator::H() const {
  Eigen::MatrixXd h = h_.selfadjointView<Eigen::Lower>();
  if (n_ > 0) h *= 2.0 / static_cast<double>(n_);
  return h;
}

namespace {

using ColMat = Eigen::MatrixXf;  // column-major: one weight column is contiguous

}  // namespace

// With J the exchange (reversal) matrix, the Cholesky factor L' of J H J gives H = V V^T with
// V = J L' J upper triangular; then H^-1 = V^-T V^-1, so U = V^-1 (upper, positive diagonal) is
// the upper Cholesky factor of H^-1. One factorisation and one triangular inverse instead of
// inverting H and factorising the inverse: about half the flops and two fewer K x K copies.
Eigen::MatrixXf GptqInverseFactor(const Eigen::MatrixXd& h, double damp, double* damp_used) {
  const int K = static_cast<int>(h.rows());
  const double mean_diag = h.diagonal().mean();
  Eigen::MatrixXd v(K, K);
  for (int attempt = 0; attempt < 5; ++attempt, damp *= 10) {
    v = h.reverse();  // J H J
    v.diagonal().array() += damp * mean_diag;
    Eigen::LLT<Eigen::Ref<Eigen::MatrixXd>> llt(v);  // in place: lower triangle = L'
    if (llt.info() != Eigen::Success) continue;
    v.triangularView<Eigen::StrictlyUpper>().setZero();
    v = v.reverse().eval();  // J L' J: upper
    if (damp_used) *damp_used = damp;
    Eigen::MatrixXd inv = Eigen::MatrixXd::Identity(K, K);
    v.triangularView<Eigen::Upper>().solveInPlace(inv);
    return inv.cast<float>();
  }
  throw Error("GPTQ: Hessian is not positive definite even with dampening " +
              std::to_string(damp / 10) + " * mean(diag)");
}

namespace {

// Fits the parameters of group `g` for every row from the current values of its columns;
// `pos[c]` is where original column c sits in the (possibly permuted) `w`.
void FitGroup(const ColMat& w, const std::vector<int>& pos, int g, const WeightQuantSpec& spec,
              QuantizedWeight& q) {
  const int c0 = g * q.group, n = std::min(q.cols, c0 + q.group) - c0;
  std::vector<float> buf(n);
  for (int r = 0; r < q.rows; ++r) {
    for (int c = 0; c < n; ++c) buf[c] = w(r, pos[c0 + c]);
    q.SetParams(r, g, SearchParams(buf.data(), n, 1, q.grid, spec.clip_search));
  }
}

}  // namespace

QuantizedWeight GptqQuantize(const Mat& w_in, const Eigen::MatrixXd& h_in,
                             const WeightQuantSpec& spec, const GptqOptions& opt,
                             GptqStats* stats) {
  const int out = static_cast<int>(w_in.rows()), K = static_cast<int>(w_in.cols());
  Check(h_in.rows() == K && h_in.cols() == K,
        "GPTQ: Hessian is " + std::to_string(h_in.rows()) + "x" + std::to_string(h_in.cols()) +
            ", weight has " + std::to_string(K) + " input columns");
  Check(opt.block > 0, "GPTQ: block size must be positive");
  QuantizedWeight q(out, K, spec.group, QuantGrid{spec.bits, spec.sym});
  GptqStats st;

  Eigen::MatrixXd h = h_in;
  ColMat w = w_in;  // [out, K], column-major
  for (int c = 0; c < K; ++c) {
    if (h(c, c) == 0) {  // a column whose input is always 0: any weight works; use 0
      h(c, c) = 1;
      w.col(c).setZero();
      ++st.dead_columns;
    }
  }
  // perm[j] = original column quantized j-th; pos[c] = where original column c sits in `w`.
  std::vector<int> perm(K);
  std::iota(perm.begin(), perm.end(), 0);
  if (opt.act_order) {
    std::stable_sort(perm.begin(), perm.end(), [&](int a, int b) { return h(a, a) > h(b, b); });
  }
  std::vector<int> pos(K);
  for (int j = 0; j < K; ++j) pos[perm[j]] = j;
  if (opt.act_order) {
    ColMat wp(out, K);
    Eigen::MatrixXd hp(K, K);
    for (int j = 0; j < K; ++j) wp.col(j) = w.col(perm[j]);
    for (int i = 0; i < K; ++i)
      for (int j = 0; j < K; ++j) hp(i, j) = h(perm[i], perm[j]);
    w.swap(wp);
    h.swap(hp);
  }
  const Eigen::MatrixXf u = GptqInverseFactor(h, opt.damp, &st.damp_used);
  h.resize(0, 0);

  const bool per_channel = q.n_groups() == 1;
  const bool static_groups = per_channel || opt.act_order;
  if (static_groups) {
    for (int g = 0; g < q.n_groups(); ++g) FitGroup(w, pos, g, spec, q);
  }

  Eigen::VectorXf err(out);
  for (int i1 = 0; i1 < K; i1 += opt.block) {
    const int i2 = std::min(K, i1 + opt.block), count = i2 - i1;
    ColMat err_block(out, count);
    for (int j = i1; j < i2; ++j) {
      const int c = perm[j], g = q.GroupOf(c);
      if (!static_groups && c % q.group == 0) FitGroup(w, pos, g, spec, q);
      const float d = u(j, j);
      for (int r = 0; r < out; ++r) {
        const QuantParams p = q.Params(r, g);
        const int code = QuantizeCode(w(r, j), p, q.grid);
        q.SetCode(r, c, code);
        err(r) = (w(r, j) - DequantCode(code, p)) / d;
      }
      // Spread this column's error over the rest of the block (lazily beyond it).
      if (j + 1 < i2) {
        w.middleCols(j + 1, i2 - j - 1).noalias() -= err * u.row(j).segment(j + 1, i2 - j - 1);
      }
      err_block.col(j - i1) = err;
    }
    if (i2 < K) {
      w.rightCols(K - i2).noalias() -= err_block * u.block(i1, i2, count, K - i2);
    }
  }
  if (stats) *stats = st;
  return q;
}

}  // namespace sq
