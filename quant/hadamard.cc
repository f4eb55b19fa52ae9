#include "quant/hadamard.h"

#include <cmath>
#include <random>
#include <utility>

#include "core/error.h"
#include "core/parallel_blocks.h"

namespace sq {

namespace {

bool IsPrime(int q) {
  if (q < 2) return false;
  for (int p = 2; p * p <= q; ++p) {
    if (q % p == 0) return false;
  }
  return true;
}

bool IsPowerOfTwo(int n) { return n > 0 && (n & (n - 1)) == 0; }

// Legendre symbol (a / q) for an odd prime q: 0, +1 or -1.
int Legendre(int a, int q) {
  a = ((a % q) + q) % q;
  if (a == 0) return 0;
  long r = 1, b = a, e = (q - 1) / 2;
  while (e > 0) {  // a^((q-1)/2) mod q
    if (e & 1) r = r * b % q;
    b = b * b % q;
    e >>= 1;
  }
  return r == 1 ? 1 : -1;
}

// Jacobsthal matrix Q[i][j] = chi(j - i) of a prime q: [q, q].
Mat Jacobsthal(int q) {
  Mat m(q, q);
  for (int i = 0; i < q; ++i) {
    for (int j = 0; j < q; ++j) m(i, j) = static_cast<float>(Legendre(j - i, q));
  }
  return m;
}

// Paley I, q prime = 3 mod 4: H = I + S with S = [[0, 1^T], [-1, Q]]; order q + 1.
Mat PaleyI(int q) {
  const int n = q + 1;
  Mat s = Mat::Zero(n, n);
  s.block(0, 1, 1, q).setOnes();
  s.block(1, 0, q, 1).setConstant(-1.0f);
  s.block(1, 1, q, q) = Jacobsthal(q);
  return Mat::Identity(n, n) + s;
}

// Paley II, q prime = 1 mod 4: C = [[0, 1^T], [1, Q]] (symmetric); each 0 becomes
// [[1, -1], [-1, -1]] and each +-1 becomes +-[[1, 1], [1, -1]]; order 2 (q + 1).
Mat PaleyII(int q) {
  const int m = q + 1;
  Mat c = Mat::Zero(m, m);
  c.block(0, 1, 1, q).setOnes();
  c.block(1, 0, q, 1).setOnes();
  c.block(1, 1, q, q) = Jacobsthal(q);
  Mat h(2 * m, 2 * m);
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < m; ++j) {
      const float v = c(i, j);
      if (v == 0) {
        h.block<2, 2>(2 * i, 2 * j) << 1, -1, -1, -1;
      } else {
        h.block<2, 2>(2 * i, 2 * j) << v, v, v, -v;
      }
    }
  }
  return h;
}

// A Paley Hadamard matrix of order m > 1 (m not a power of two), or an empty matrix.
Mat PaleyMatrix(int m) {
  if (m % 4 != 0) return Mat();
  if (IsPrime(m - 1) && (m - 1) % 4 == 3) return PaleyI(m - 1);
  if (m % 2 == 0 && IsPrime(m / 2 - 1) && (m / 2 - 1) % 4 == 1) return PaleyII(m / 2 - 1);
  return Mat();
}

Mat Sylvester(int n) {
  Mat h = Mat::Ones(1, 1);
  while (h.rows() < n) {
    const Eigen::Index k = h.rows();
    Mat g(2 * k, 2 * k);
    g << h, h, h, -h;
    h = std::move(g);
  }
  return h;
}

Mat Kronecker(const Mat& a, const Mat& b) {
  Mat k(a.rows() * b.rows(), a.cols() * b.cols());
  for (Eigen::Index i = 0; i < a.rows(); ++i) {
    for (Eigen::Index j = 0; j < a.cols(); ++j) {
      k.block(i * b.rows(), j * b.cols(), b.rows(), b.cols()) = a(i, j) * b;
    }
  }
  return k;
}

// Haar-random orthogonal matrix: QR of a Gaussian with the signs of R's diagonal folded into Q.
Mat RandomOrthogonal(int n, std::mt19937_64& rng) {
  std::normal_distribution<double> d(0.0, 1.0);
  Eigen::MatrixXd g(n, n);
  for (Eigen::Index i = 0; i < g.size(); ++i) g.data()[i] = d(rng);
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(g);
  Eigen::MatrixXd q = qr.householderQ();
  const Eigen::MatrixXd r = qr.matrixQR().triangularView<Eigen::Upper>();
  for (int j = 0; j < n; ++j) {
    if (r(j, j) < 0) q.col(j) *= -1.0;
  }
  return q.cast<float>();
}

}  // namespace

int HadamardBase(int n) {
  if (n <= 0) return 0;
  int p = 1;
  while (n % (2 * p) == 0) p *= 2;  // largest power of two dividing n
  for (; p >= 1; p /= 2) {
    const int m = n / p;
    if (m == 1) return 1;
    if (IsPowerOfTwo(m)) continue;  // covered by a larger p
    if (PaleyMatrix(m).size() > 0) return m;
  }
  return 0;
}

bool HadamardMatrix(int n, Mat* h) {
  const int m = HadamardBase(n);
  if (m == 0) return false;
  *h = m == 1 ? Sylvester(n) : Kronecker(Sylvester(n / m), PaleyMatrix(m));
  return true;
}

void FwhtRows(Eigen::Ref<Mat> x) {
  const Eigen::Index n = x.cols();
  Check(IsPowerOfTwo(static_cast<int>(n)),
        [&] { return "FwhtRows: width " + std::to_string(n) + " is not a power of two"; });
  for (Eigen::Index t = 0; t < x.rows(); ++t) {
    float* r = x.row(t).data();
    for (Eigen::Index len = 1; len < n; len *= 2) {
      for (Eigen::Index i = 0; i < n; i += 2 * len) {
        for (Eigen::Index j = i; j < i + len; ++j) {
          const float a = r[j], b = r[j + len];
          r[j] = a + b;
          r[j + len] = a - b;
        }
      }
    }
  }
}

Rotation::Rotation(int n, uint64_t seed) : n_(n) {
  Check(n > 0, "Rotation: size must be positive, got " + std::to_string(n));
  std::mt19937_64 rng(seed);
  base_ = HadamardBase(n);
  if (base_ == 0) {
    q_ = RandomOrthogonal(n, rng);
    return;
  }
  if (base_ > 1) base_h_ = PaleyMatrix(base_);
  signs_.resize(n);
  std::bernoulli_distribution coin(0.5);
  for (int i = 0; i < n; ++i) signs_[i] = coin(rng) ? 1.0f : -1.0f;
}

const Mat& Rotation::matrix() const {
  if (base_ == 0) return q_;
  std::call_once(dense_once_, [&] {
    Mat h;
    HadamardMatrix(n_, &h);
    q_ = signs_.asDiagonal() * h / std::sqrt(static_cast<float>(n_));
  });
  return q_;
}

KroneckerFactors Rotation::Factors() const {
  Check(base_ > 0, "Rotation::Factors: " + Describe() + " is not a Hadamard");
  // Sylvester(P) = Sylvester(p) (x) Sylvester(P / p) for powers of two, so
  // H = Sylvester(P) (x) Paley(m) = Sylvester(p) (x) (Sylvester(P / p) (x) Paley(m)).
  const int big = n_ / base_;  // P
  int p = 1;
  while (2 * p <= big && static_cast<long>(2 * p) * (2 * p) <= n_) p *= 2;
  const Mat syl = Sylvester(big / p);
  KroneckerFactors f;
  f.scaled_signs = signs_ / std::sqrt(static_cast<float>(n_));
  f.left = Sylvester(p);
  f.right = base_ == 1 ? syl : Kronecker(syl, base_h_);
  return f;
}

Rotation::Rotation(Mat q, std::string what)
    : n_(static_cast<int>(q.rows())), what_(std::move(what)) {
  Check(n_ > 0 && q.cols() == n_, "Rotation: a given matrix must be square and non-empty, got " +
                                      std::to_string(q.rows()) + " x " + std::to_string(q.cols()));
  q_ = std::move(q);
}

std::string Rotation::Describe() const {
  if (!what_.empty()) return what_;
  const std::string n = std::to_string(n_);
  if (base_ == 0) return "random-orthogonal " + n + " (QR of a seeded Gaussian)";
  if (base_ == 1) return "hadamard " + n + " (sylvester, random signs)";
  return "hadamard " + n + " = sylvester " + std::to_string(n_ / base_) + " x paley " +
         std::to_string(base_) + " (random signs)";
}

namespace {

void CheckWidth(Eigen::Index cols, int n) {
  Check(cols == n, [&] {
    return "Rotation: input width " + std::to_string(cols) + ", expected " + std::to_string(n);
  });
}

// x <- x M in blocks of rows across the threads: each block's product is a temporary as large as
// the block, not as x (an embedding has 128k rows: 1 GiB in f32 at 1B), and single-threaded
// (core/parallel_blocks.h), so x M does not depend on the thread count.
template <typename M>
void RightMultiplyRows(Eigen::Ref<Mat> x, const M& m) {
  ForEachBlock(x.rows(), [&](Eigen::Index r0, Eigen::Index n) {
    auto rows = x.middleRows(r0, n);
    rows = rows * m;
  });
}

}  // namespace

void Rotation::ApplyRef(Eigen::Ref<Mat> x) const {
  CheckWidth(x.cols(), n_);
  RightMultiplyRows(x, matrix());
}

void Rotation::ApplyTransposed(Eigen::Ref<Mat> x) const {
  CheckWidth(x.cols(), n_);
  RightMultiplyRows(x, matrix().transpose());
}

void Rotation::Apply(Eigen::Ref<Mat> x) const {
  CheckWidth(x.cols(), n_);
  if (base_ == 0) return RightMultiplyRows(x, q_);  // a dense Q (given or random-orthogonal)
  // Blocks of rows bound the transposed scratch of the Paley path (an embedding has 10^5 rows).
  ForEachBlock(
      x.rows(), [&](Eigen::Index r0, Eigen::Index n) { ApplyFast(x.middleRows(r0, n)); }, 64);
}

void Rotation::ApplyFast(Eigen::Ref<Mat> x) const {
  // Row index i*m + j of H_p (x) B: x (H_p (x) B) = reshape(H_p^T X B) with X [p, m].
  x = x * signs_.asDiagonal();
  const int m = base_, p = n_ / base_;
  if (m > 1) {
    for (Eigen::Index t = 0; t < x.rows(); ++t) {
      Eigen::Map<Mat> blocks(x.row(t).data(), p, m);  // [p, m]
      blocks = (blocks * base_h_).eval();
    }
  }
  if (m == 1) {
    FwhtRows(x);
  } else if (p > 1) {
    Mat cols(x.rows() * m, p);  // each (row, j) pair as one length-p transform
    for (Eigen::Index t = 0; t < x.rows(); ++t) {
      for (int i = 0; i < p; ++i) {
        for (int j = 0; j < m; ++j) cols(t * m + j, i) = x(t, i * m + j);
      }
    }
    FwhtRows(cols);
    for (Eigen::Index t = 0; t < x.rows(); ++t) {
      for (int i = 0; i < p; ++i) {
        for (int j = 0; j < m; ++j) x(t, i * m + j) = cols(t * m + j, i);
      }
    }
  }
  x *= 1.0f / std::sqrt(static_cast<float>(n_));
}

}  // namespace sq
