// Weight and activation quantizers (the float reference that every kernel and the ONNX export
// must reproduce).
//
// Weights: integer codes per output channel or per group of G columns along K (the input
// dimension), symmetric (signed codes, deq = q * scale) or asymmetric (unsigned codes and a zero
// point, deq = (q - zero) * scale). When G does not divide K the last group is shorter: there
// are ceil(K / G) groups, which is ONNX blocked DequantizeLinear's rule (scale dim =
// ceil(K / block_size)) and what MatMulNBits computes after zero padding. G >= K is per channel.
//
// Activations: per token (row), dynamic, symmetric; see FakeQuantRows for the exact float op
// sequence (it mirrors the ONNX graph, so ONNX Runtime reproduces it bit for bit).
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace sq {

// The integer grid: bits 2..8. Symmetric: [-2^(b-1), 2^(b-1) - 1]; asymmetric: [0, 2^b - 1].
struct QuantGrid {
  int bits = 4;
  bool sym = true;
  int qmin() const { return sym ? -(1 << (bits - 1)) : 0; }
  int qmax() const { return sym ? (1 << (bits - 1)) - 1 : (1 << bits) - 1; }
};

// deq(q) = (q - zero) * scale. `zero` is an integer in [qmin, qmax] (0 when symmetric).
struct QuantParams {
  float scale = 1.0f;
  int zero = 0;
};

// Code of one value: clamp(RoundHalfEven(w / scale) + zero, qmin, qmax).
int QuantizeCode(float w, const QuantParams& p, const QuantGrid& g);
inline float DequantCode(int q, const QuantParams& p) {
  return static_cast<float>(q - p.zero) * p.scale;
}

// Grid parameters for `n` values w[0], w[stride], ... with the range clipped by `ratio` (<= 1).
// Symmetric: scale = ratio * absmax / qmax (the -8 code is reachable only by clamping: the
// usual "scale = absmax / 7" at 4 bits). Asymmetric: range [ratio*min(w,0), ratio*max(w,0)]
// (zero stays exactly representable), scale = range / qmax, zero = round(-lo / scale).
// An all-zero input gives scale 1 (every code 0 or `zero`, deq 0).
QuantParams FitParams(const float* w, int n, int stride, const QuantGrid& g, float ratio);

// The clip ratios the MSE search tries: 1.00, 0.95, ..., 0.50.
std::vector<float> ClipRatioGrid();
// FitParams with the ratio from ClipRatioGrid() that minimises sum (w - deq(q(w)))^2 when
// `search` is set (ties keep the larger ratio); ratio 1 otherwise.
QuantParams SearchParams(const float* w, int n, int stride, const QuantGrid& g, bool search);

struct WeightQuantSpec {
  int bits = 4;             // 2..8 (4: int4 packed two per byte; otherwise one code per byte)
  int group = 0;            // G columns per scale along K; 0 = per output channel
  bool sym = true;
  bool clip_search = true;  // MSE search of the clip ratio per channel / group
  std::string Describe() const;  // "w4 g128 sym clip-search"
};

// A quantized weight matrix [rows = out, cols = in].
struct QuantizedWeight {
  QuantGrid grid;
  int rows = 0, cols = 0;
  int group = 0;  // effective G: columns per group (== cols when per channel)
  // Codes, row-major: int4 packed as in quant/int4_nibbles.h (signed when sym, unsigned otherwise);
  // other widths one code per byte (int8_t when sym, uint8_t otherwise).
  std::vector<uint8_t> codes;
  Mat scales;                 // [rows, n_groups]
  std::vector<uint8_t> zeros; // [rows * n_groups] row-major; empty when symmetric

  // Allocates zeroed codes, unit scales and (asymmetric) zero points.
  QuantizedWeight(int rows, int cols, int group, const QuantGrid& grid);
  QuantizedWeight() = default;

  int n_groups() const { return (cols + group - 1) / group; }
  int GroupOf(int col) const { return col / group; }
  bool packed_int4() const { return grid.bits == 4; }
  QuantParams Params(int r, int g) const;
  void SetParams(int r, int g, const QuantParams& p);
  int Code(int r, int c) const;
  void SetCode(int r, int c, int q);
  // Dequantized rows [r0, r0 + n) into `out` [n, cols].
  void DequantizeRows(int r0, int n, Mat& out) const;
  Mat Dequantize() const { Mat m; DequantizeRows(0, rows, m); return m; }
  // The centred codes (q - zero) of group g for rows [r0, r0 + n), as floats, into `out`
  // [n, columns of group g]: deq = centred * scale.
  void CentredCodes(int r0, int n, int g, Mat& out) const;
  size_t bytes() const;  // codes + scales (as f32) + zero points

 private:
  template <typename F>
  void MapCodes(int r, int c0, int c1, float* dst, F f) const;
};

// Effective group size for K columns: `group` when 0 < group < K, else K (per channel).
int EffectiveGroup(int cols, int group);

// Round-to-nearest quantization of w [out, in] (with the clip search when the spec asks).
QuantizedWeight QuantizeRtn(const Mat& w, const WeightQuantSpec& spec);

// Keeps the scale of an all-zero row finite: such a row quantizes to 0, never NaN.
inline constexpr float kActScaleEps = 1e-8f;

// Per-token activation quantization.
struct ActQuantSpec {
  int bits = 16;       // 16: off (no quantization); else 2..8, symmetric per token
  float clip = 1.0f;   // the per-token absmax is multiplied by this before the scale
  bool enabled() const { return bits < 16; }
  std::string Describe() const;  // "a4 clip 1.00" or "a16"
  // The signed code range: [-8, 7] for 4 bits.
  float qmax() const { return static_cast<float>((1 << (bits - 1)) - 1); }
  float qmin() const { return -qmax() - 1; }
  // A row's scale from its max |x|, in the op order below. Every path (fake-quant, integer
  // kernels, the reference) calls this one function, so their scales agree bit for bit.
  float RowScale(float absmax) const {
    float a = absmax;
    if (clip != 1.0f) a = a * clip;
    a = std::max(a, kActScaleEps);
    return a / qmax();
  }
};

// Fake-quantizes every row of x in place, in exactly this float op order (= the ONNX graph
// Abs -> ReduceMax(-1) -> [Mul clip] -> Max(eps) -> Div qmax -> Div -> Round -> Clip -> Mul):
//   a = max_j |x_j|;  a = a * clip (skipped when clip == 1);  a = max(a, kActScaleEps);
//   s = a / qmax;  x_j = clamp(RoundHalfEven(x_j / s), qmin, qmax) * s
// with qmax = 2^(bits-1) - 1 and qmin = -2^(bits-1) ([-8, 7] for 4 bits).
void FakeQuantRows(Mat& x, const ActQuantSpec& spec);
// A plain scalar version of the same (the reference the tests compare against).
void FakeQuantRowsRef(Mat& x, const ActQuantSpec& spec);
// FakeQuantRows split in two: the codes clamp(RoundHalfEven(x_j / s), qmin, qmax) as floats
// [T, K] and each row's scale s [T], so that FakeQuantRows(x) == codes * s bit for bit.
void QuantizeActRows(const Mat& x, const ActQuantSpec& spec, Mat* codes, Vec* scales);

}  // namespace sq
