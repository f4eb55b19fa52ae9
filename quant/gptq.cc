#include "quant/gptq.h"

#include <algorithm>
#include <functional>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "core/dist.h"
#include "core/error.h"
#include "core/parallel_blocks.h"

namespace sq {

namespace {

// Floating-point addition is not associative: per-rank partial sums added afterwards would round
// differently from one process, so with `in_rank_order` the accumulator itself travels rank to
// rank, each adding its own rows (add_mine) as one process would add all of them in order.
// Returns the number of rows added over all ranks (this process's alone otherwise).
int64_t AddRows(Eigen::MatrixXd& acc, int64_t my_rows, bool in_rank_order,
                const std::function<void()>& add_mine) {
  if (!in_rank_order) {
    add_mine();
    return my_rows;
  }
  int64_t rows[] = {my_rows};
  dist::SumInRankOrder(rows);
  dist::FoldInRankOrder(std::span<double>(acc.data(), static_cast<size_t>(acc.size())), add_mine);
  return rows[0];
}

void CheckHessianInput(const Mat& x, Eigen::Index k) {
  Check(x.cols() == k, [&] {
    return "HessianAccumulator: input has " + std::to_string(x.cols()) + " columns, expected " +
           std::to_string(k);
  });
}

}  // namespace

Eigen::MatrixXd AsymmetricRetarget(const Eigen::MatrixXd& h, const std::vector<Mat>& x_float,
                                   const std::vector<Mat>& x_quant, double damp,
                                   bool in_rank_order) {
  Check(x_float.size() == x_quant.size(), "AsymmetricRetarget: one float input per quantized one");
  const Eigen::Index k = h.rows();
  Eigen::MatrixXd d = Eigen::MatrixXd::Zero(k, k);
  int64_t my_rows = 0;
  for (size_t w = 0; w < x_quant.size(); ++w) {  // checked before any rank-to-rank exchange
    Check(x_float[w].rows() == x_quant[w].rows() && x_float[w].cols() == k,
          "AsymmetricRetarget: the float and quantized inputs differ in shape");
    my_rows += x_quant[w].rows();
  }
  const int64_t n = AddRows(d, my_rows, in_rank_order, [&] {
    for (size_t w = 0; w < x_quant.size(); ++w) {
      const Eigen::MatrixXd xq = x_quant[w].cast<double>();
      const Eigen::MatrixXd diff = x_float[w].cast<double>() - xq;
      ForEachBlock(k, [&](Eigen::Index c0, Eigen::Index m) {
        d.middleCols(c0, m).noalias() += diff.transpose() * xq.middleCols(c0, m);
      });
    }
  });
  if (n == 0) return Eigen::MatrixXd::Zero(k, k);
  d *= 2.0 / static_cast<double>(n);
  Eigen::MatrixXd hd = h;
  const double mean_diag = h.diagonal().mean();
  hd.diagonal().array() += damp * (mean_diag > 0 ? mean_diag : 1.0);
  // P = D Hd^-1, i.e. P^T = Hd^-1 D^T (Hd symmetric).
  return hd.ldlt().solve(d.transpose()).transpose();
}

// The lower triangle of X^T X in three blocks over a column split X = [X1 X2]: two
// triangular products (X1^T X1, X2^T X2) and one full one (X2^T X1) of equal work, run as two
// parallel tasks. Eigen's own rankUpdate is single-threaded, and at K = 8192-14336 it was a
// tenth of GPTQ's time. The split is fixed, so the sums do not depend on the thread count.
void HessianAccumulator::Add(const Mat& x) {
  CheckHessianInput(x, h_.cols());
  const Eigen::MatrixXd xd = x.cast<double>();
  const Eigen::Index k = xd.cols(), k1 = k / 2, k2 = k - k1;
  const auto x1 = xd.leftCols(k1), x2 = xd.rightCols(k2);
#pragma omp parallel sections if (k >= 256)
  {
#pragma omp section
    {
      h_.topLeftCorner(k1, k1).selfadjointView<Eigen::Lower>().rankUpdate(x1.transpose());
      h_.bottomRightCorner(k2, k2).selfadjointView<Eigen::Lower>().rankUpdate(x2.transpose());
    }
#pragma omp section
    h_.bottomLeftCorner(k2, k1).noalias() += x2.transpose() * x1;
  }
  n_ += x.rows();
}

void HessianAccumulator::AddInRankOrder(const std::vector<Mat>& rows) {
  int64_t my_rows = 0;
  for (const Mat& x : rows) {
    CheckHessianInput(x, h_.cols());  // before any rank-to-rank exchange
    my_rows += x.rows();
  }
  n_ = AddRows(h_, my_rows, true, [&] {
    for (const Mat& x : rows) Add(x);
  });
}

Eigen::MatrixXd HessianAccumulator::H() const {
  Eigen::MatrixXd h = h_.selfadjointView<Eigen::Lower>();
  if (n_ > 0) h *= 2.0 / static_cast<double>(n_);
  return h;
}

Eigen::MatrixXd HessianAccumulator::TakeH() {
  const Eigen::Index k = h_.cols();
  for (Eigen::Index j = 0; j + 1 < k; ++j) h_.row(j).tail(k - 1 - j) = h_.col(j).tail(k - 1 - j);
  if (n_ > 0) h_ *= 2.0 / static_cast<double>(n_);
  n_ = 0;
  return std::exchange(h_, Eigen::MatrixXd::Zero(0, 0));
}

namespace {

using ColMat = Eigen::MatrixXf;  // column-major: one weight column is contiguous

// J L^-1 J as floats, for the lower triangular L held in the lower triangle of `l` (J the
// exchange matrix). Column j of L^-1 is zero above row j, so a block of columns [c0, c1) needs
// only L's bottom-right corner from c0: K^3 / 3 flops instead of the K^3 of solving against a
// full identity. The blocks are independent and run in parallel (Eigen's triangular solve is
// single-threaded), each the same way whatever the thread count; only one block of doubles
// exists per thread, so the inverse costs K^2 floats, not another K^2 doubles.
Eigen::MatrixXf ReversedLowerInverse(const Eigen::MatrixXd& l) {
  const Eigen::Index K = l.rows();
  Eigen::MatrixXf u = Eigen::MatrixXf::Zero(K, K);
  ForEachBlock(K, [&](Eigen::Index c0, Eigen::Index n) {  // the largest corners first
    const Eigen::Index m = K - c0;
    Eigen::MatrixXd x = Eigen::MatrixXd::Zero(m, n);
    x.topRows(n).setIdentity();
    l.bottomRightCorner(m, m).triangularView<Eigen::Lower>().solveInPlace(x);
    for (Eigen::Index j = 0; j < n; ++j) {
      for (Eigen::Index i = j; i < m; ++i) {
        u(K - 1 - c0 - i, K - 1 - c0 - j) = static_cast<float>(x(i, j));
      }
    }
  });
  return u;
}

// In-place lower Cholesky factor of the symmetric positive definite `a` (the lower triangle is
// read and overwritten; the strict upper triangle is left untouched). Right-looking and blocked like LAPACK's
// dpotrf, with the panel solve split by rows and the trailing update by column blocks across
// threads: Eigen's LLT runs on one core, and at K = 14336 it was GPTQ's largest single cost.
// The blocking is fixed, so the factor does not depend on the thread count. False if `a` is
// not positive definite.
bool ParallelCholesky(Eigen::MatrixXd& a) {
  const int K = static_cast<int>(a.rows()), kBlock = 256;
  for (int k = 0; k < K; k += kBlock) {
    const int b = std::min(kBlock, K - k), rest = K - k - b;
    Eigen::Ref<Eigen::MatrixXd> a11 = a.block(k, k, b, b);
    Eigen::LLT<Eigen::Ref<Eigen::MatrixXd>> llt(a11);
    if (llt.info() != Eigen::Success) return false;
    // A21 := A21 L11^-T, block rows independent
    ForEachBlock(
        rest,
        [&](Eigen::Index r0, Eigen::Index n) {
          auto rows = a.block(k + b + r0, k, n, b);
          a11.triangularView<Eigen::Lower>().transpose().solveInPlace<Eigen::OnTheRight>(rows);
        },
        kBlock);
    const auto a21 = a.block(k + b, k, rest, b);
    // A22 -= A21 A21^T, lower part by column blocks
    ForEachBlock(
        rest,
        [&](Eigen::Index c0, Eigen::Index n) {
          const auto cols = a21.middleRows(c0, n);
          auto a22 = a.block(k + b + c0, k + b + c0, rest - c0, n);
          a22.topRows(n).triangularView<Eigen::Lower>() -= cols * cols.transpose();
          a22.bottomRows(rest - c0 - n).noalias() -=
              a21.bottomRows(rest - c0 - n) * cols.transpose();
        },
        kBlock);
  }
  return true;
}

}  // namespace

// With J the exchange (reversal) matrix, the Cholesky factor L' of J H J gives H = V V^T with
// V = J L' J upper triangular; then H^-1 = V^-T V^-1, so U = V^-1 = J L'^-1 J (upper, positive
// diagonal) is the upper Cholesky factor of H^-1. One factorisation and one triangular inverse
// instead of inverting H and factorising the inverse: about half the flops. All of it happens
// in `h` itself plus the float result: at K = 14336 each K x K double is 1.6 GB.
Eigen::MatrixXf GptqInverseFactor(Eigen::MatrixXd h, double damp, double* damp_used) {
  const int K = static_cast<int>(h.rows());
  h.reverseInPlace();  // J H J
  const Eigen::VectorXd diag = h.diagonal();
  const double mean_diag = diag.mean();
  for (int attempt = 0; attempt < 5; ++attempt, damp *= 10) {
    if (attempt > 0) {  // the failed factorisation overwrote the lower triangle: restore it
      for (int j = 0; j + 1 < K; ++j) h.col(j).tail(K - 1 - j) = h.row(j).tail(K - 1 - j);
    }
    h.diagonal() = diag.array() + damp * mean_diag;
    if (!ParallelCholesky(h)) continue;  // lower triangle = L'
    if (damp_used) *damp_used = damp;
    return ReversedLowerInverse(h);
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

GptqFactor FactorHessian(Eigen::MatrixXd h, const GptqOptions& opt) {
  const int K = static_cast<int>(h.rows());
  Check(h.cols() == K, "GPTQ: Hessian is not square");
  GptqFactor f;
  f.act_order = opt.act_order;
  for (int c = 0; c < K; ++c) {
    if (h(c, c) == 0) {  // a column whose input is always 0: any weight works; use 0
      h(c, c) = 1;
      f.dead_columns.push_back(c);
    }
  }
  f.perm.resize(K);
  std::iota(f.perm.begin(), f.perm.end(), 0);
  if (opt.act_order) {
    std::stable_sort(f.perm.begin(), f.perm.end(),
                     [&](int a, int b) { return h(a, a) > h(b, b); });
    Eigen::MatrixXd hp(K, K);
    for (int i = 0; i < K; ++i)
      for (int j = 0; j < K; ++j) hp(i, j) = h(f.perm[i], f.perm[j]);
    h.swap(hp);
  }
  f.u = GptqInverseFactor(std::move(h), opt.damp, &f.damp_used);
  return f;
}

QuantizedWeight GptqQuantize(const Mat& w_in, const Eigen::MatrixXd& h,
                             const WeightQuantSpec& spec, const GptqOptions& opt,
                             GptqStats* stats) {
  return GptqQuantize(w_in, FactorHessian(h, opt), spec, opt, stats);
}

QuantizedWeight GptqQuantize(const Mat& w_in, const GptqFactor& f, const WeightQuantSpec& spec,
                             const GptqOptions& opt, GptqStats* stats) {
  const int out = static_cast<int>(w_in.rows()), K = static_cast<int>(w_in.cols());
  Check(f.u.rows() == K, "GPTQ: Hessian is " + std::to_string(f.u.rows()) + "x" +
                             std::to_string(f.u.cols()) + ", weight has " + std::to_string(K) +
                             " input columns");
  Check(opt.block > 0, "GPTQ: block size must be positive");
  QuantizedWeight q(out, K, spec.group, QuantGrid{spec.bits, spec.sym});
  const std::vector<int>& perm = f.perm;
  const Eigen::MatrixXf& u = f.u;
  // w holds the columns in quantization order; pos[c] = where original column c sits in it.
  ColMat w(out, K);  // [out, K], column-major
  for (int j = 0; j < K; ++j) w.col(j) = w_in.col(perm[j]);
  std::vector<int> pos(K);
  for (int j = 0; j < K; ++j) pos[perm[j]] = j;
  for (int c : f.dead_columns) w.col(pos[c]).setZero();

  const bool per_channel = q.n_groups() == 1;
  const bool static_groups = per_channel || f.act_order;
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
    if (i2 < K) {  // K^2 x out flops in all: the bulk of GPTQ's time, across the threads
      ForEachBlock(K - i2, [&](Eigen::Index c0, Eigen::Index n) {
        w.middleCols(i2 + c0, n).noalias() -= err_block * u.block(i1, i2 + c0, count, n);
      });
    }
  }
  if (stats) *stats = {static_cast<int>(f.dead_columns.size()), f.damp_used};
  return q;
}

}  // namespace sq
