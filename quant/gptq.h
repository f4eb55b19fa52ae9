// GPTQ (Frantar et al. 2022): quantize the columns of W [out, in] one at a time, spreading each
// column's rounding error over the columns not yet quantized through the inverse Hessian of the
// layer's reconstruction loss ||X W^T - X Q^T||^2, H = 2 X^T X / N.
#pragma once

#include <vector>

#include <Eigen/Dense>
#include <vector>

#include "core/tensor.h"
#include "quant/quantizer.h"

namespace sq {

// Accumulates H = 2 X^T X / N over calibration rows (tokens), in double.
class HessianAccumulator {
 public:
  explicit HessianAccumulator(int in) : h_(Eigen::MatrixXd::Zero(in, in)) {}
  void Add(const Mat& x);  // x [T, in]
  Eigen::MatrixXd H() const;  // [in, in]
  // H, moving the sums out (no second K x K copy); the accumulator is empty afterwards.
  Eigen::MatrixXd TakeH();
  long rows() const { return n_; }
  // Adds every MPI rank's `rows` (core/dist.h), rank 0's first, exactly as one process adding
  // all windows in file order would: every rank gets the same Hessian, bit for bit, and so
  // quantizes the same weights as one process.
  void AddInRankOrder(const std::vector<Mat>& rows);

 private:
  Eigen::MatrixXd h_;  // sum of x^T x
  long n_ = 0;
};

// GPTAQ's asymmetric objective (Li et al. 2025): fit the quantized linear, which sees the inputs
// X_q of the quantized model, to the float model's output X_f W^T:
//   min_Q ||X_f W^T - X_q Q^T||^2 = ||X_f W^T - X_q W'^T||^2 + ||X_q (W' - Q)^T||^2
// where W' = W (I + P), P = D (H + damp mean(diag H) I)^-1, D = (2/N) sum (X_f - X_q)^T X_q and
// H = (2/N) sum X_q^T X_q (HessianAccumulator's scaling): W' is the least-squares fit of the float
// output from the quantized inputs, so the residual is orthogonal to X_q and the cross term
// vanishes (exactly without dampening). GPTQ on W' with H then minimises the objective. GPTAQ
// folds P into GPTQ's column loop instead; this forms W' once ([in, in] per input site).
// `h` is that H; `x_float`, `x_quant` the windows' inputs in the two models, row for row.
// `in_rank_order`: the windows are this MPI rank's block (core/dist.h) and D is summed over every
// rank's, rank 0's first, as HessianAccumulator::AddInRankOrder does: every rank gets one
// process's P, bit for bit.
Eigen::MatrixXd AsymmetricRetarget(const Eigen::MatrixXd& h, const std::vector<Mat>& x_float,
                                   const std::vector<Mat>& x_quant, double damp,
                                   bool in_rank_order = false);

struct GptqOptions {
  double damp = 0.01;      // added to the diagonal: damp * mean(diag(H))
  int block = 128;         // columns per lazy-update block
  bool act_order = false;  // quantize columns by decreasing diag(H)
};

// What happened while quantizing one matrix (for reports).
struct GptqStats {
  int dead_columns = 0;     // diag(H) == 0: never seen nonzero input; weights set to 0
  double damp_used = 0;     // the dampening factor that made H positive definite
};

// The upper Cholesky factor U of (H + damp * mean(diag H) I)^-1, i.e. U^T U = that inverse (as
// torch.linalg.cholesky(..., upper=True) in the reference GPTQ). If H + damp is not positive
// definite the dampening is multiplied by 10 (up to 4 times) before giving up with an Error;
// `damp_used` (may be null) receives the factor that worked.
Eigen::MatrixXf GptqInverseFactor(Eigen::MatrixXd h, double damp, double* damp_used);

// What GPTQ needs from a Hessian, computed once for all the linears that read the same input.
struct GptqFactor {
  Eigen::MatrixXf u;               // GptqInverseFactor of H, rows/columns in `perm` order
  std::vector<int> perm;           // perm[j] = original column quantized j-th
  std::vector<int> dead_columns;   // diag(H) == 0: never seen nonzero input; weights set to 0
  double damp_used = 0;
  bool act_order = false;
};
GptqFactor FactorHessian(Eigen::MatrixXd h, const GptqOptions& opt);

// Quantizes w [out, in] with GPTQ. Groups are contiguous runs of G columns (as RTN stores them):
// without act-order each group's scale is fitted (with the clip search if asked) from the
// already-updated weights when its first column is reached, as in the reference GPTQ; with
// act-order the columns are visited out of order, so all group scales are fitted up front from
// the original weights ("static groups", AutoGPTQ), which keeps the contiguous group layout.
// Per-channel scales are always fitted up front. If H + damp is not positive definite the
// dampening is multiplied by 10 (up to 4 times) before giving up with an Error.
QuantizedWeight GptqQuantize(const Mat& w, const Eigen::MatrixXd& h, const WeightQuantSpec& spec,
                             const GptqOptions& opt, GptqStats* stats = nullptr);
QuantizedWeight GptqQuantize(const Mat& w, const GptqFactor& f, const WeightQuantSpec& spec,
                             const GptqOptions& opt, GptqStats* stats = nullptr);

}  // namespace sq
