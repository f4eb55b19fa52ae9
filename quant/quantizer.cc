#include "quant/quantizer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "core/numeric.h"
#include "quant/int4_nibbles.h"

namespace sq {

int QuantizeCode(float w, const QuantParams& p, const QuantGrid& g) {
  const float q = RoundHalfEven(w / p.scale) + static_cast<float>(p.zero);
  return static_cast<int>(std::clamp(q, static_cast<float>(g.qmin()), static_cast<float>(g.qmax())));
}

QuantParams FitParams(const float* w, int n, int stride, const QuantGrid& g, float ratio) {
  QuantParams p;
  if (g.sym) {
    float amax = 0;
    for (int i = 0; i < n; ++i) amax = std::max(amax, std::abs(w[i * stride]));
    amax *= ratio;
    p.scale = amax > 0 ? amax / static_cast<float>(g.qmax()) : 1.0f;
    return p;
  }
  float lo = 0, hi = 0;  // the range always contains 0
  for (int i = 0; i < n; ++i) {
    lo = std::min(lo, w[i * stride]);
    hi = std::max(hi, w[i * stride]);
  }
  lo *= ratio;
  hi *= ratio;
  if (hi - lo <= 0) return p;  // all zero: scale 1, zero 0
  p.scale = (hi - lo) / static_cast<float>(g.qmax());
  p.zero = static_cast<int>(std::clamp(RoundHalfEven(-lo / p.scale), 0.0f,
                                       static_cast<float>(g.qmax())));
  return p;
}

std::vector<float> ClipRatioGrid() {
  std::vector<float> r;
  for (int i = 0; i <= 10; ++i) r.push_back(1.0f - 0.05f * static_cast<float>(i));
  return r;
}

QuantParams SearchParams(const float* w, int n, int stride, const QuantGrid& g, bool search) {
  if (!search) return FitParams(w, n, stride, g, 1.0f);
  QuantParams best;
  double best_err = INFINITY;
  for (float ratio : ClipRatioGrid()) {
    const QuantParams p = FitParams(w, n, stride, g, ratio);
    double err = 0;
    for (int i = 0; i < n; ++i) {
      const double e = w[i * stride] - DequantCode(QuantizeCode(w[i * stride], p, g), p);
      err += e * e;
    }
    if (err < best_err) {
      best_err = err;
      best = p;
    }
  }
  return best;
}

std::string WeightQuantSpec::Describe() const {
  std::string s = "w";
  s += std::to_string(bits);
  s += group > 0 ? " g" : " per-channel";
  if (group > 0) s += std::to_string(group);
  s += sym ? " sym" : " asym";
  if (clip_search) s += " clip-search";
  return s;
}

std::string ActQuantSpec::Describe() const {
  if (!enabled()) return "a16";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "a%d clip %.2f", bits, clip);
  return buf;
}

int EffectiveGroup(int cols, int group) { return group > 0 && group < cols ? group : cols; }

QuantizedWeight::QuantizedWeight(int rows_, int cols_, int group_, const QuantGrid& grid_)
    : grid(grid_), rows(rows_), cols(cols_), group(EffectiveGroup(cols_, group_)) {
  Check(grid.bits >= 2 && grid.bits <= 8,
        "weight bits must be in [2, 8], got " + std::to_string(grid.bits));
  const size_t n = static_cast<size_t>(rows) * cols;
  codes.assign(packed_int4() ? Int4Bytes(n) : n, 0);
  scales = Mat::Ones(rows, n_groups());
  if (!grid.sym) zeros.assign(static_cast<size_t>(rows) * n_groups(), 0);
}

QuantParams QuantizedWeight::Params(int r, int g) const {
  return {scales(r, g), grid.sym ? 0 : zeros[static_cast<size_t>(r) * n_groups() + g]};
}

void QuantizedWeight::SetParams(int r, int g, const QuantParams& p) {
  scales(r, g) = p.scale;
  if (!grid.sym) zeros[static_cast<size_t>(r) * n_groups() + g] = static_cast<uint8_t>(p.zero);
}

int QuantizedWeight::Code(int r, int c) const {
  const size_t i = static_cast<size_t>(r) * cols + c;
  if (packed_int4()) return Int4At(codes.data(), i, grid.sym);
  return grid.sym ? static_cast<int>(static_cast<int8_t>(codes[i])) : static_cast<int>(codes[i]);
}

void QuantizedWeight::SetCode(int r, int c, int q) {
  const size_t i = static_cast<size_t>(r) * cols + c;
  if (packed_int4()) {
    SetInt4(codes.data(), i, q);
  } else {
    codes[i] = static_cast<uint8_t>(q & 0xFF);
  }
}

// Writes f(code) for columns [c0, c1) of row r into dst[0, c1 - c0). For int4 f is tabulated over
// the 16 nibbles (the same f(q) values, bit for bit): dequantizing every weight of a layer on
// each calibration pass was a quarter of GPTQ's time at 8B with a call per element.
template <typename F>
void QuantizedWeight::MapCodes(int r, int c0, int c1, float* dst, F f) const {
  if (!packed_int4()) {
    for (int c = c0; c < c1; ++c) dst[c - c0] = f(Code(r, c));
    return;
  }
  float table[16];
  for (int nib = 0; nib < 16; ++nib) table[nib] = f(grid.sym && nib >= 8 ? nib - 16 : nib);
  const size_t base = static_cast<size_t>(r) * cols;
  for (int c = c0; c < c1; ++c) {
    const size_t i = base + c;
    dst[c - c0] = table[(codes[i / 2] >> ((i & 1) * 4)) & 0xF];
  }
}

void QuantizedWeight::DequantizeRows(int r0, int n, Mat& out) const {
  out.resize(n, cols);
#pragma omp parallel for schedule(static) if (static_cast<long>(n) * cols > (1 << 16))
  for (int r = 0; r < n; ++r) {
    for (int g = 0; g < n_groups(); ++g) {
      const QuantParams p = Params(r0 + r, g);
      MapCodes(r0 + r, g * group, std::min(cols, (g + 1) * group), out.row(r).data() + g * group,
               [&](int q) { return DequantCode(q, p); });
    }
  }
}

void QuantizedWeight::CentredCodes(int r0, int n, int g, Mat& out) const {
  const int c0 = g * group, c1 = std::min(cols, c0 + group);
  out.resize(n, c1 - c0);
#pragma omp parallel for schedule(static) if (static_cast<long>(n) * (c1 - c0) > (1 << 16))
  for (int r = 0; r < n; ++r) {
    const int zero = Params(r0 + r, g).zero;
    MapCodes(r0 + r, c0, c1, out.row(r).data(),
             [&](int q) { return static_cast<float>(q - zero); });
  }
}

size_t QuantizedWeight::bytes() const {
  return codes.size() + static_cast<size_t>(scales.size()) * sizeof(float) + zeros.size();
}

QuantizedWeight QuantizeRtn(const Mat& w, const WeightQuantSpec& spec) {
  const QuantGrid grid{spec.bits, spec.sym};
  QuantizedWeight q(static_cast<int>(w.rows()), static_cast<int>(w.cols()), spec.group, grid);
#pragma omp parallel for schedule(static)
  for (int r = 0; r < q.rows; ++r) {
    for (int g = 0; g < q.n_groups(); ++g) {
      const int c0 = g * q.group, n = std::min(q.cols, c0 + q.group) - c0;
      const float* row = w.row(r).data() + c0;
      const QuantParams p = SearchParams(row, n, 1, grid, spec.clip_search);
      q.SetParams(r, g, p);
      for (int c = 0; c < n; ++c) q.SetCode(r, c0 + c, QuantizeCode(row[c], p, grid));
    }
  }
  return q;
}

namespace {
void CheckActBits(const ActQuantSpec& spec) {
  Check(spec.bits >= 2 && spec.bits <= 8,
        "activation bits must be 16 (off) or in [2, 8], got " + std::to_string(spec.bits));
  Check(spec.clip > 0 && spec.clip <= 1,
        "activation clip ratio must be in (0, 1], got " + std::to_string(spec.clip));
}
}  // namespace

void FakeQuantRows(Mat& x, const ActQuantSpec& spec) {
  if (!spec.enabled()) return;
  CheckActBits(spec);
  const float qmax = spec.qmax(), qmin = spec.qmin();
#pragma omp parallel for schedule(static)
  for (Eigen::Index t = 0; t < x.rows(); ++t) {
    auto row = x.row(t).array();
    const float s = spec.RowScale(row.abs().maxCoeff());
    row = (row / s).rint().max(qmin).min(qmax) * s;
  }
}

void QuantizeActRows(const Mat& x, const ActQuantSpec& spec, Mat* codes, Vec* scales) {
  CheckActBits(spec);
  const float qmax = spec.qmax(), qmin = spec.qmin();
  codes->resize(x.rows(), x.cols());
  scales->resize(x.rows());
#pragma omp parallel for schedule(static)
  for (Eigen::Index t = 0; t < x.rows(); ++t) {
    auto row = x.row(t).array();
    const float s = spec.RowScale(row.abs().maxCoeff());
    codes->row(t).array() = (row / s).rint().max(qmin).min(qmax);
    (*scales)[t] = s;
  }
}

void FakeQuantRowsRef(Mat& x, const ActQuantSpec& spec) {
  if (!spec.enabled()) return;
  CheckActBits(spec);
  const float qmax = spec.qmax(), qmin = spec.qmin();
  for (Eigen::Index t = 0; t < x.rows(); ++t) {
    float a = 0;
    for (Eigen::Index j = 0; j < x.cols(); ++j) a = std::max(a, std::abs(x(t, j)));
    const float s = spec.RowScale(a);
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      x(t, j) = std::clamp(RoundHalfEven(x(t, j) / s), qmin, qmax) * s;
    }
  }
}

}  // namespace sq
