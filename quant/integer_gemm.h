// Integer W4A4 GEMM on the CPU: packed int4 weights (quant/integer_gemm_layout.h) times per-token
// quantized activations with exact int32 accumulation per weight group, then one float scale
// per (token, output channel, group):
//
//   y[t, n] = sa[t] * sum_g sw[n, g] * sum_{k in g} qa[t, k] * (u[n, k] - z[n, g])
//
// T = tokens, K = in features, N = out features. qa are the activation codes of
// FakeQuantRows (quant/quantizer.h), bit for bit; u - z are the weight codes of the
// QuantizedWeight. The float part runs in a fixed order in every kernel:
//   acc = 0;  for g: acc = fma(float(int_sum_g), sw[n, g], acc);  y = acc * sa[t]
// so all kernels agree bit for bit, and with the fake-quant float path (which sums the same
// products in float) to float rounding.
//
// Kernels: a plain scalar reference on the QuantizedWeight itself, a portable scalar kernel on
// the packed layout, AVX2 (vpmaddubsw + vpmaddwd), AVX-512 VNNI (vpdpbusd, u8 weights x
// s8 activations), and AMX (tdpbsud on 16 x 64-byte tiles, blocks of 32 tokens, for weights
// whose padded group is a multiple of 64 columns; other weights and the last T mod 32 tokens
// take the VNNI kernel). The SIMD ones are compiled with target attributes, so a portable build
// (-DSINKQUANT_NATIVE=OFF) keeps them and the best one is chosen at run time from CPUID.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "quant/integer_gemm_layout.h"
#include "quant/quantizer.h"

namespace sq {

enum class Int4Kernel { kAuto, kScalar, kAvx2, kAvx512Vnni, kAmxInt8 };
inline constexpr Int4Kernel kInt4Kernels[] = {Int4Kernel::kAuto, Int4Kernel::kScalar,
                                              Int4Kernel::kAvx2, Int4Kernel::kAvx512Vnni,
                                              Int4Kernel::kAmxInt8};

const char* Int4KernelName(Int4Kernel k);  // "auto", "scalar", "avx2", "avx512-vnni", "amx-int8"
// The fastest kernel this CPU runs (never kAuto).
Int4Kernel BestInt4Kernel();
bool Int4KernelSupported(Int4Kernel k);

// Per-token quantized activations laid out for one weight's groups: each group of G columns
// starts at a multiple of Gp (padding columns are 0).
struct QuantizedActs {
  int rows = 0;  // T
  int n_groups = 0;
  int group_pad = 0;          // Gp
  std::vector<int8_t> codes;  // [T, n_groups * Gp]
  std::vector<float> scales;  // [T]  sa: the fake-quant scale of the token
  std::vector<int32_t> sums;  // [T, n_groups]: sum of the codes of each group
  int stride() const { return n_groups * group_pad; }
  const int8_t* row(int t) const { return codes.data() + static_cast<size_t>(t) * stride(); }
};

// Quantizes x [T, K] per token exactly as FakeQuantRows does (same float ops, so the codes and
// scale reproduce its output bit for bit: x_fq = code * scale). `group`, `group_pad` as in the
// weight the codes will meet. Throws Error when `spec` is not enabled. `allow_simd` false forces
// the scalar definition (tests compare the two).
void QuantizeActs(const Mat& x, const ActQuantSpec& spec, int group, int group_pad,
                  QuantizedActs* out, bool allow_simd = true);

// y [T, N] (resized) from packed weights. kAuto picks BestInt4Kernel(); asking for a kernel the
// CPU lacks throws Error. Parallel (OpenMP) over panels of output channels.
void Int4Gemm(const QuantizedActs& a, const PackedInt4& w, Mat& y,
              Int4Kernel kernel = Int4Kernel::kAuto);

// The plain reference: the formula above, loop by loop, on the unpacked QuantizedWeight.
void Int4GemmReference(const QuantizedActs& a, const QuantizedWeight& w, Mat& y);

}  // namespace sq
