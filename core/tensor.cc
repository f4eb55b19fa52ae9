#include "core/tensor.h"

#include <cstring>

#include "core/error.h"
#include "core/numeric.h"

namespace sq {

const char* DTypeName(DType t) {
  switch (t) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    case DType::kI32: return "I32";
    case DType::kI64: return "I64";
    case DType::kU8: return "U8";
    case DType::kI8: return "I8";
  }
  return "?";
}

size_t DTypeSize(DType t) {
  switch (t) {
    case DType::kF32: case DType::kI32: return 4;
    case DType::kF16: case DType::kBF16: return 2;
    case DType::kI64: return 8;
    case DType::kU8: case DType::kI8: return 1;
  }
  return 0;
}

bool ParseDType(const std::string& name, DType* out) {
  static const struct { const char* name; DType t; } kTable[] = {
      {"F32", DType::kF32}, {"F16", DType::kF16}, {"BF16", DType::kBF16}, {"I32", DType::kI32},
      {"I64", DType::kI64}, {"U8", DType::kU8},   {"I8", DType::kI8}};
  for (const auto& e : kTable) {
    if (name == e.name) { *out = e.t; return true; }
  }
  return false;
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int64_t TensorView::cols() const {
  int64_t n = 1;
  for (size_t i = 1; i < shape.size(); ++i) n *= shape[i];
  return n;
}

std::string TensorView::ShapeString() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

void ToFloat(DType dtype, const std::byte* src, float* dst, int64_t n) {
  switch (dtype) {
    case DType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return;
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = Bf16ToFloat(h);
      }
      return;
    case DType::kF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = F16ToFloat(h);
      }
      return;
    default:
      throw Error(std::string("cannot convert dtype ") + DTypeName(dtype) + " to float");
  }
}

Mat ToMat(const TensorView& v) {
  Check(!v.empty(), "ToMat: empty tensor");
  int64_t rows = v.shape.size() <= 1 ? 1 : v.rows();
  int64_t cols = v.shape.size() <= 1 ? v.numel() : v.cols();
  Mat m(rows, cols);
  ToFloat(v.dtype, v.data, m.data(), v.numel());
  return m;
}

Vec ToVec(const TensorView& v) {
  Check(!v.empty(), "ToVec: empty tensor");
  Vec out(v.numel());
  ToFloat(v.dtype, v.data, out.data(), v.numel());
  return out;
}

TensorView OwnedTensor::View() const {
  TensorView v;
  v.dtype = DType::kF32;
  v.shape = shape;
  v.data = reinterpret_cast<const std::byte*>(values.data());
  return v;
}

std::shared_ptr<OwnedTensor> MakeOwned(Mat m, std::vector<int64_t> shape) {
  auto t = std::make_shared<OwnedTensor>();
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  Check(n == m.size(), "MakeOwned: shape does not match matrix size");
  t->shape = std::move(shape);
  t->values = std::move(m);
  return t;
}

}  // namespace sq
