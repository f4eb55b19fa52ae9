// Pieces of the AVX-512 VNNI int4 kernel (quant/integer_gemm.cc) that the AMX one
// (quant/integer_gemm_amx.cc) shares, so both apply the zero points and scales with the same
// float operations and so agree bit for bit. Not for use outside these two files.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "quant/integer_gemm.h"

namespace sq::int4_internal {

#define SQ_VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vnni")))

// Group-end fix-up of one token row: `acc` holds the raw vpdpbusd sums of NV = 2 NP vectors
// (even v: low nibbles, odd v: high nibbles, i.e. 16 x the sum). Subtracts z * sum(a), then
// out = fma(float(int), scale, out).
template <int NP>
SQ_VNNI_TARGET inline void VnniGroupEnd(const __m512i* acc, const PackedInt4& w, int p0, int g,
                                        int32_t act_sum, float* out) {
  const __m512i sum = _mm512_set1_epi32(act_sum);
  const __m512i sym_corr = _mm512_set1_epi32(8 * act_sum);
  for (int v = 0; v < 2 * NP; ++v) {
    const int j = v / 2, half = v % 2;
    const __m512 sc = _mm512_loadu_ps(w.panel_scales(p0 + j, g) + 16 * half);
    __m512i i = half ? _mm512_srai_epi32(acc[v], 4) : acc[v];
    if (w.sym) {  // z = 8 for every real channel (padded channels have scale 0)
      i = _mm512_sub_epi32(i, sym_corr);
    } else {
      const __m512i z = _mm512_loadu_si512(w.panel_zeros(p0 + j, g) + 16 * half);
      i = _mm512_sub_epi32(i, _mm512_mullo_epi32(z, sum));
    }
    _mm512_store_ps(out + 16 * v,
                    _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), sc, _mm512_load_ps(out + 16 * v)));
  }
}

// tile [rows][width] (width a multiple of 16: panels p0, p0 + 1, ...) times each token's
// activation scale, stored into y at rows t0.., the columns of those panels.
void FinishRows(float* tile, int rows, int width, const QuantizedActs& a, int t0, int p0, Mat& y);
// Tokens [t_begin, T) of panel p on the VNNI kernel.
void VnniPanelRows(const QuantizedActs& a, const PackedInt4& w, int t_begin, int p, Mat& y);

// The AMX kernel (needs AmxUsable(AmxOp::kInt8) and w.group_pad % 64 == 0).
void AmxInt4Gemm(const QuantizedActs& a, const PackedInt4& w, Mat& y);
bool AmxInt4Fits(const PackedInt4& w);  // group_pad % 64 == 0: a tile step is 64 columns

}  // namespace sq::int4_internal
