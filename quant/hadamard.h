// Orthogonal rotations for QuaRot-style transforms: Hadamard matrices (Sylvester powers of two,
// Paley constructions, their Kronecker products) and, for widths no construction reaches, a
// seeded random orthogonal matrix (QR of a Gaussian).
//
// A rotation is applied to rows: x [T, n] -> x Q. Every Q here is orthogonal (Q Q^T = I), so
// y = x W^T = (x Q)(W Q)^T: rotating a linear's input and its weight columns together is exact.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include "core/tensor.h"
#include "model/linear.h"

namespace sq {

// A +-1 Hadamard matrix of order n (H H^T = n I) when n = 2^k * m with m = 1 or an order a
// Paley construction reaches with a prime q (Paley I: m = q + 1, q = 3 mod 4; Paley II:
// m = 2 (q + 1), q = 1 mod 4), taking the largest power of two. Returns false otherwise
// (e.g. 172 = 4 * 43, 6, 3).
bool HadamardMatrix(int n, Mat* h);

// The Paley factor m (1 for a power of two) of the construction HadamardMatrix uses, or 0 when
// none exists.
int HadamardBase(int n);

// A randomized Hadamard written as two small products: Q = diag(scaled_signs) (left (x) right),
// left = Sylvester(p) [p, p] and right [m, m] (a Hadamard too), p m = n, scaled_signs =
// signs / sqrt(n). For x [n] read as X [p, m] (row-major), x Q = (left^T X' right) with
// X' = X diag(scaled_signs) reshaped, and left is symmetric. p is about sqrt(n), so the two
// products cost (p + m) n multiply-adds a row, not n^2 (14336: 288 n).
struct KroneckerFactors {
  Vec scaled_signs;  // [n]
  Mat left, right;
};

// Q = diag(signs) H / sqrt(n) with random signs (QuaRot's randomized Hadamard), or a Haar-random
// orthogonal matrix when no Hadamard of order n is constructible. Deterministic per seed.
// A HeadRotation too, so the engine can rotate queries and keys with it (kv-rotate).
// A Hadamard's n x n matrix is only built when asked for (matrix(), ApplyRef, ApplyTransposed):
// Apply runs the fast transform, and the export writes KroneckerFactors, so a model's online
// down_proj rotation at 8B (14336^2, 822 MB) is never held.
class Rotation : public HeadRotation {
 public:
  Rotation(int n, uint64_t seed);
  // A given orthogonal q [n, n] (a learned rotation, quant/learn_rotation.h), applied densely;
  // `what` is its Describe().
  Rotation(Mat q, std::string what);

  int size() const override { return n_; }
  bool is_hadamard() const { return base_ > 0; }
  // "hadamard 192 = 16 x paley 12", "hadamard 512 (sylvester)", "random-orthogonal 172 (QR)".
  std::string Describe() const;
  const Mat& matrix() const;         // [n, n], built on first use for a Hadamard
  KroneckerFactors Factors() const;  // is_hadamard() only

  // x [T, n] -> x Q. Fast path: signs, the m x m Paley block, then a fast Walsh-Hadamard
  // transform across the 2^k blocks: O(n log n + n m) per row instead of O(n^2). Rows are
  // independent, so blocks of them run in parallel with the same result.
  void Apply(Eigen::Ref<Mat> x) const override;
  // x Q^T as a dense product (used on one head's width only).
  void ApplyTransposed(Eigen::Ref<Mat> x) const override;
  // The plain reference: x Q as a dense product.
  void ApplyRef(Eigen::Ref<Mat> x) const;

 private:
  void ApplyFast(Eigen::Ref<Mat> x) const;  // one block of rows

  int n_ = 0;
  int base_ = 0;     // Paley factor m; 0 = dense (random orthogonal or given)
  Vec signs_;        // [n] random +-1 (Hadamard only)
  Mat base_h_;       // [m, m] +-1 Paley block (m > 1)
  mutable std::once_flag dense_once_;
  mutable Mat q_;     // [n, n]: given or random-orthogonal, or a Hadamard's once built
  std::string what_;  // Describe() of a given matrix
};

// In-place unnormalised Walsh-Hadamard transform of every row of x [T, n] (n a power of two),
// i.e. x H_n with Sylvester's H_n.
void FwhtRows(Eigen::Ref<Mat> x);

}  // namespace sq
