// The shared vocabulary: dense float matrices and non-owning views over stored tensors.
#pragma once

#include <Eigen/Dense>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sq {

// Row-major so that one row is one token (activations) or one output channel (weights).
using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Vec = Eigen::VectorXf;
using MatMap = Eigen::Map<Mat>;
using ConstMatMap = Eigen::Map<const Mat>;

// Raises each channel's running max |x| (`absmax`, one entry per column) to what the rows of
// `x` reach: the per-channel statistic SmoothQuant's scales and +outliers' channel choice read.
inline void RaiseChannelAbsMax(Vec& absmax, const Mat& x) {
  absmax = absmax.cwiseMax(x.cwiseAbs().colwise().maxCoeff().transpose());
}

enum class DType { kF32, kF16, kBF16, kI32, kI64, kU8, kI8 };

const char* DTypeName(DType t);      // "F32", "F16", ... as safetensors spells them
size_t DTypeSize(DType t);           // bytes per element
bool ParseDType(const std::string& name, DType* out);

// A non-owning view of a tensor stored somewhere else (an mmap'd file or an owned buffer
// kept alive by whoever made the view). An empty view (`data == nullptr`) means "absent".
struct TensorView {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const std::byte* data = nullptr;

  bool empty() const { return data == nullptr; }
  int64_t numel() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * DTypeSize(dtype); }
  int64_t rows() const { return shape.empty() ? 0 : shape[0]; }
  // Product of all dims after the first (1 for a vector).
  int64_t cols() const;
  std::string ShapeString() const;  // "[192, 64]"
};

// Converts `n` elements of a float-like dtype (F32, F16, BF16) to float.
void ToFloat(DType dtype, const std::byte* src, float* dst, int64_t n);
// The whole view as a float matrix [rows, cols] (a vector becomes [1, n]; ToVec reads it as a
// vector).
Mat ToMat(const TensorView& v);
// A 1-D view as a float vector.
Vec ToVec(const TensorView& v);

// Owned float storage that a TensorView can point into. Keep the shared_ptr alive as long
// as any view of it is used.
struct OwnedTensor {
  std::vector<int64_t> shape;
  Mat values;  // row-major, so its data is the tensor's bytes
  TensorView View() const;
};
// Takes `m` by value: pass an rvalue (a transform's result) to move it in without a copy, which
// halves the peak of rewriting a [vocab, hidden] embedding.
std::shared_ptr<OwnedTensor> MakeOwned(Mat m, std::vector<int64_t> shape);

}  // namespace sq
