#include "quant/integer_gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/amx.h"
#include "core/error.h"
#include "core/numeric.h"
#include "quant/integer_gemm_internal.h"

namespace sq {

// ---------------------------------------------------------------------------------------------
// Kernel choice.

const char* Int4KernelName(Int4Kernel k) {
  switch (k) {
    case Int4Kernel::kAuto:
      return "auto";
    case Int4Kernel::kScalar:
      return "scalar";
    case Int4Kernel::kAvx2:
      return "avx2";
    case Int4Kernel::kAvx512Vnni:
      return "avx512-vnni";
    case Int4Kernel::kAmxInt8:
      return "amx-int8";
  }
  return "?";
}

bool Int4KernelSupported(Int4Kernel k) {
  switch (k) {
    case Int4Kernel::kAuto:
    case Int4Kernel::kScalar:
      return true;
    case Int4Kernel::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Int4Kernel::kAvx512Vnni:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vnni");
    case Int4Kernel::kAmxInt8:  // its tails run on the VNNI kernel
      return Int4KernelSupported(Int4Kernel::kAvx512Vnni) && AmxUsable(AmxOp::kInt8);
  }
  return false;
}

Int4Kernel BestInt4Kernel() {
  static const Int4Kernel best = Int4KernelSupported(Int4Kernel::kAmxInt8) ? Int4Kernel::kAmxInt8
                                 : Int4KernelSupported(Int4Kernel::kAvx512Vnni)
                                     ? Int4Kernel::kAvx512Vnni
                                 : Int4KernelSupported(Int4Kernel::kAvx2) ? Int4Kernel::kAvx2
                                                                          : Int4Kernel::kScalar;
  return best;
}

// ---------------------------------------------------------------------------------------------
// Activations: FakeQuantRows's op sequence, keeping the codes.

namespace {

// One token row: absmax -> scale -> codes and group sums. The scalar version is the definition;
// the AVX-512 one runs the same IEEE ops (division, round-to-nearest-even, clamp) 16 at a time.
struct ActRowArgs {
  int K, group, group_pad;
  ActQuantSpec spec;
  float qmin, qmax;
};

float QuantizeRowScalar(const float* x, const ActRowArgs& r, int8_t* q, int32_t* sums) {
  float a = 0;
  for (int k = 0; k < r.K; ++k) a = std::max(a, std::abs(x[k]));
  const float s = r.spec.RowScale(a);
  for (int k = 0; k < r.K; ++k) {
    const int g = k / r.group;
    const int c = static_cast<int>(std::clamp(RoundHalfEven(x[k] / s), r.qmin, r.qmax));
    q[g * r.group_pad + k % r.group] = static_cast<int8_t>(c);
    sums[g] += c;
  }
  return s;
}

__attribute__((target("avx512f,avx512bw"))) float QuantizeRowAvx512(const float* x,
                                                                    const ActRowArgs& r, int8_t* q,
                                                                    int32_t* sums) {
  auto mask_of = [](int left) {
    return static_cast<__mmask16>(left >= 16 ? 0xFFFF : (1u << left) - 1);
  };
  __m512 amax = _mm512_setzero_ps();
  for (int k = 0; k < r.K; k += 16) {
    amax = _mm512_max_ps(amax, _mm512_abs_ps(_mm512_maskz_loadu_ps(mask_of(r.K - k), x + k)));
  }
  const float s = r.spec.RowScale(_mm512_reduce_max_ps(amax));
  const __m512 vs = _mm512_set1_ps(s), lo = _mm512_set1_ps(r.qmin), hi = _mm512_set1_ps(r.qmax);
  for (int g = 0, k0 = 0; k0 < r.K; ++g, k0 += r.group) {
    const int n = std::min(r.group, r.K - k0);
    __m512i sum = _mm512_setzero_si512();
    for (int j = 0; j < n; j += 16) {
      const __mmask16 m = mask_of(n - j);
      __m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(m, x + k0 + j), vs);
      v = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      const __m512i c = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(v, lo), hi));
      sum = _mm512_mask_add_epi32(sum, m, sum, c);
      _mm512_mask_cvtepi32_storeu_epi8(q + g * r.group_pad + j, m, c);
    }
    sums[g] = _mm512_reduce_add_epi32(sum);
  }
  return s;
}

}  // namespace

void QuantizeActs(const Mat& x, const ActQuantSpec& spec, int group, int group_pad,
                  QuantizedActs* out, bool allow_simd) {
  Check(spec.enabled() && spec.bits >= 2 && spec.bits <= 8,
        "integer int4 kernel: activation bits must be in [2, 8], got " + std::to_string(spec.bits));
  Check(spec.clip > 0 && spec.clip <= 1,
        "integer int4 kernel: activation clip must be in (0, 1], got " + std::to_string(spec.clip));
  Check(group > 0 && group_pad >= group && group_pad % 4 == 0,
        "integer int4 kernel: bad group " + std::to_string(group) + " / padded " +
            std::to_string(group_pad));
  const int T = static_cast<int>(x.rows()), K = static_cast<int>(x.cols());
  out->rows = T;
  out->n_groups = (K + group - 1) / group;
  out->group_pad = group_pad;
  out->codes.assign(static_cast<size_t>(T) * out->stride(), 0);
  out->scales.resize(T);
  out->sums.assign(static_cast<size_t>(T) * out->n_groups, 0);
  const ActRowArgs args{K, group, group_pad, spec, spec.qmin(), spec.qmax()};
  const bool simd =
      allow_simd && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
#pragma omp parallel for schedule(static)
  for (int t = 0; t < T; ++t) {
    int8_t* q = out->codes.data() + static_cast<size_t>(t) * out->stride();
    int32_t* sums = out->sums.data() + static_cast<size_t>(t) * out->n_groups;
    out->scales[t] = simd ? QuantizeRowAvx512(x.row(t).data(), args, q, sums)
                          : QuantizeRowScalar(x.row(t).data(), args, q, sums);
  }
}

// ---------------------------------------------------------------------------------------------
// The plain reference.

void Int4GemmReference(const QuantizedActs& a, const QuantizedWeight& w, Mat& y) {
  Check(w.grid.bits == 4 && a.n_groups == w.n_groups(),
        "Int4GemmReference: activations and weight disagree on groups");
  y.resize(a.rows, w.rows);
  for (int t = 0; t < a.rows; ++t) {
    for (int n = 0; n < w.rows; ++n) {
      float acc = 0;
      for (int g = 0; g < w.n_groups(); ++g) {
        const QuantParams p = w.Params(n, g);
        const int k0 = g * w.group, k1 = std::min(w.cols, k0 + w.group);
        int32_t s = 0;
        for (int k = k0; k < k1; ++k)
          s += a.row(t)[g * a.group_pad + k - k0] * (w.Code(n, k) - p.zero);
        acc = std::fma(static_cast<float>(s), p.scale, acc);
      }
      y(t, n) = acc * a.scales[t];
    }
  }
}

namespace {

// Copies a tile [rows, kPanel * np] into y at (t0, n0), clipping columns past N.
void StoreTile(const float* tile, int rows, int ld, int t0, int n0, Mat& y) {
  const int n = std::min(ld, static_cast<int>(y.cols()) - n0);
  for (int r = 0; r < rows; ++r) std::memcpy(&y(t0 + r, n0), tile + r * ld, n * sizeof(float));
}

// ---------------------------------------------------------------------------------------------
// Portable scalar kernel on the packed layout (the fallback; also checks the layout).

void ScalarPanel(const QuantizedActs& a, const PackedInt4& w, int p, Mat& y) {
  float tile[kPanel];
  for (int t = 0; t < a.rows; ++t) {
    for (int i = 0; i < kPanel; ++i) {
      float acc = 0;
      for (int g = 0; g < w.n_groups; ++g) {
        const uint8_t* b = w.panel(p) + static_cast<size_t>(g) * w.steps() * kBlockBytes;
        const int8_t* q = a.row(t) + g * w.group_pad;
        int32_t s = 0;
        for (int k = 0; k < w.group_pad; ++k) {
          const int byte = (k / 4) * kBlockBytes + 4 * (i % 16) + k % 4;
          s += q[k] * ((b[byte] >> (i < 16 ? 0 : 4)) & 0xF);
        }
        s -= w.panel_zeros(p, g)[i] * a.sums[static_cast<size_t>(t) * w.n_groups + g];
        acc = std::fma(static_cast<float>(s), w.panel_scales(p, g)[i], acc);
      }
      tile[i] = acc * a.scales[t];
    }
    StoreTile(tile, 1, kPanel, t, p * kPanel, y);
  }
}

// ---------------------------------------------------------------------------------------------
// AVX2: vpmaddubsw (u8 x s8 -> pairs of s16, no saturation since u <= 15) then vpmaddwd by 1.
// One panel (32 channels = 4 ymm of int32) times MR tokens.

constexpr int kAvx2Rows = 2;

template <int MR>
__attribute__((target("avx2,fma"))) void Avx2Tile(const QuantizedActs& a, const PackedInt4& w,
                                                  int t0, int p, Mat& y) {
  alignas(32) float tile[MR][kPanel] = {};
  const __m256i lo = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  for (int g = 0; g < w.n_groups; ++g) {
    const uint8_t* b = w.panel(p) + static_cast<size_t>(g) * w.steps() * kBlockBytes;
    __m256i acc[MR][4];
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < 4; ++v) acc[r][v] = _mm256_setzero_si256();
    for (int s = 0; s < w.steps(); ++s) {
      // Bytes 0..31: channels 0..7 (low nibbles), 16..23 (high); bytes 32..63: 8..15, 24..31.
      const __m256i x0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + s * kBlockBytes));
      const __m256i x1 =
          _mm256_load_si256(reinterpret_cast<const __m256i*>(b + s * kBlockBytes + 32));
      const __m256i wv[4] = {_mm256_and_si256(x0, lo), _mm256_and_si256(x1, lo),
                             _mm256_and_si256(_mm256_srli_epi16(x0, 4), lo),
                             _mm256_and_si256(_mm256_srli_epi16(x1, 4), lo)};
      for (int r = 0; r < MR; ++r) {
        int32_t a4;
        std::memcpy(&a4, a.row(t0 + r) + g * w.group_pad + 4 * s, 4);
        const __m256i av = _mm256_set1_epi32(a4);
        for (int v = 0; v < 4; ++v) {
          const __m256i prod = _mm256_madd_epi16(_mm256_maddubs_epi16(wv[v], av), ones);
          acc[r][v] = _mm256_add_epi32(acc[r][v], prod);
        }
      }
    }
    for (int r = 0; r < MR; ++r) {
      const __m256i sum = _mm256_set1_epi32(a.sums[static_cast<size_t>(t0 + r) * w.n_groups + g]);
      for (int v = 0; v < 4; ++v) {
        const __m256i z =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w.panel_zeros(p, g) + 8 * v));
        const __m256 sc = _mm256_loadu_ps(w.panel_scales(p, g) + 8 * v);
        const __m256i i = _mm256_sub_epi32(acc[r][v], _mm256_mullo_epi32(z, sum));
        _mm256_store_ps(&tile[r][8 * v], _mm256_fmadd_ps(_mm256_cvtepi32_ps(i), sc,
                                                         _mm256_load_ps(&tile[r][8 * v])));
      }
    }
  }
  for (int r = 0; r < MR; ++r) {
    const __m256 sa = _mm256_set1_ps(a.scales[t0 + r]);
    for (int v = 0; v < 4; ++v)
      _mm256_store_ps(&tile[r][8 * v], _mm256_mul_ps(_mm256_load_ps(&tile[r][8 * v]), sa));
  }
  StoreTile(&tile[0][0], MR, kPanel, t0, p * kPanel, y);
}

__attribute__((target("avx2,fma"))) void Avx2Panel(const QuantizedActs& a, const PackedInt4& w,
                                                   int p, Mat& y) {
  int t = 0;
  for (; t + kAvx2Rows <= a.rows; t += kAvx2Rows) Avx2Tile<kAvx2Rows>(a, w, t, p, y);
  for (; t < a.rows; ++t) Avx2Tile<1>(a, w, t, p, y);
}

// ---------------------------------------------------------------------------------------------
// AVX-512 VNNI: vpdpbusd (u8 weights x s8 activations, 4 products summed into each int32).
// A tile is MR tokens x NP panels; per panel one zmm load gives two u8 operands:
// `x & 0x0F` (channels 0..15) and `x & 0xF0` (channels 16..31 times 16; the int32 sum is
// shifted right by 4 at the group's end, exact because every product is a multiple of 16, and
// 16 u * a >= 240 * -128 fits vpdpbusd's 16-bit products).

constexpr int kVnniRows = 4;
using int4_internal::VnniGroupEnd;

inline int32_t Load4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Any MR x NP tile (used for the tails; GCC keeps these small arrays in registers).
template <int MR, int NP>
SQ_VNNI_TARGET void VnniTile(const QuantizedActs& a, const PackedInt4& w, int t0, int p0, Mat& y) {
  constexpr int NV = 2 * NP;  // zmm of int32 per token row
  alignas(64) float tile[MR][NV * 16] = {};
  const __m512i lo = _mm512_set1_epi8(0x0F), hi = _mm512_set1_epi8(static_cast<char>(0xF0));
  const int steps = w.steps();
  for (int g = 0; g < w.n_groups; ++g) {
    const uint8_t* b[NP];
    for (int j = 0; j < NP; ++j)
      b[j] = w.panel(p0 + j) + static_cast<size_t>(g) * steps * kBlockBytes;
    const int8_t* ar[MR];
    for (int r = 0; r < MR; ++r) ar[r] = a.row(t0 + r) + g * w.group_pad;
    __m512i acc[MR][NV];
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_si512();
    for (int s = 0; s < steps; ++s) {
      __m512i wv[NV];
      for (int j = 0; j < NP; ++j) {
        const __m512i x = _mm512_load_si512(b[j] + s * kBlockBytes);
        wv[2 * j] = _mm512_and_si512(x, lo);
        wv[2 * j + 1] = _mm512_and_si512(x, hi);
      }
      for (int r = 0; r < MR; ++r) {
        const __m512i av = _mm512_set1_epi32(Load4(ar[r] + 4 * s));
        for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], wv[v], av);
      }
    }
    for (int r = 0; r < MR; ++r) {
      VnniGroupEnd<NP>(acc[r], w, p0, g, a.sums[static_cast<size_t>(t0 + r) * w.n_groups + g],
                       tile[r]);
    }
  }
  int4_internal::FinishRows(&tile[0][0], MR, NV * 16, a, t0, p0, y);
}

// The hot loop of the main tile (4 tokens x 64 channels, one group): 16 named accumulators,
// stored to `acc` [4][4] at the end. A separate non-inlined function: inlined into the group
// loop, GCC 12 splits the accumulators' live ranges and copies/spills them every step.
__attribute__((noinline)) SQ_VNNI_TARGET void VnniDot4x2(const uint8_t* b0, const uint8_t* b1,
                                                         const int8_t* a0, const int8_t* a1,
                                                         const int8_t* a2, const int8_t* a3,
                                                         int steps, __m512i* acc) {
  const __m512i lo = _mm512_set1_epi8(0x0F), hi = _mm512_set1_epi8(static_cast<char>(0xF0));
  __m512i c00 = _mm512_setzero_si512(), c01 = c00, c02 = c00, c03 = c00;
  __m512i c10 = c00, c11 = c00, c12 = c00, c13 = c00;
  __m512i c20 = c00, c21 = c00, c22 = c00, c23 = c00;
  __m512i c30 = c00, c31 = c00, c32 = c00, c33 = c00;
  for (int s = 0; s < steps; ++s) {
    const __m512i x0 = _mm512_load_si512(b0 + s * kBlockBytes);
    const __m512i x1 = _mm512_load_si512(b1 + s * kBlockBytes);
    const __m512i w0 = _mm512_and_si512(x0, lo), w1 = _mm512_and_si512(x0, hi);
    const __m512i w2 = _mm512_and_si512(x1, lo), w3 = _mm512_and_si512(x1, hi);
#define SQ_VNNI_ROW(r)                                         \
  {                                                            \
    const __m512i av = _mm512_set1_epi32(Load4(a##r + 4 * s)); \
    c##r##0 = _mm512_dpbusd_epi32(c##r##0, w0, av);            \
    c##r##1 = _mm512_dpbusd_epi32(c##r##1, w1, av);            \
    c##r##2 = _mm512_dpbusd_epi32(c##r##2, w2, av);            \
    c##r##3 = _mm512_dpbusd_epi32(c##r##3, w3, av);            \
  }
    SQ_VNNI_ROW(0)
    SQ_VNNI_ROW(1)
    SQ_VNNI_ROW(2)
    SQ_VNNI_ROW(3)
#undef SQ_VNNI_ROW
  }
  acc[0] = c00, acc[1] = c01, acc[2] = c02, acc[3] = c03;
  acc[4] = c10, acc[5] = c11, acc[6] = c12, acc[7] = c13;
  acc[8] = c20, acc[9] = c21, acc[10] = c22, acc[11] = c23;
  acc[12] = c30, acc[13] = c31, acc[14] = c32, acc[15] = c33;
}

SQ_VNNI_TARGET void VnniTile4x2(const QuantizedActs& a, const PackedInt4& w, int t0, int p0,
                                Mat& y) {
  alignas(64) float tile[4][64] = {};
  alignas(64) __m512i acc[16];
  const int steps = w.steps();
  for (int g = 0; g < w.n_groups; ++g) {
    const size_t off = static_cast<size_t>(g) * steps * kBlockBytes;
    const int8_t* a0 = a.row(t0) + g * w.group_pad;
    VnniDot4x2(w.panel(p0) + off, w.panel(p0 + 1) + off, a0, a0 + a.stride(), a0 + 2 * a.stride(),
               a0 + 3 * a.stride(), steps, acc);
    const int32_t* sums = a.sums.data() + static_cast<size_t>(t0) * w.n_groups + g;
    for (int r = 0; r < 4; ++r)
      VnniGroupEnd<2>(acc + 4 * r, w, p0, g, sums[r * w.n_groups], tile[r]);
  }
  int4_internal::FinishRows(&tile[0][0], 4, 64, a, t0, p0, y);
}

// Tokens [t, T) of panels p0 .. p0 + NP - 1.
template <int NP>
SQ_VNNI_TARGET void VnniPanels(const QuantizedActs& a, const PackedInt4& w, int p0, int t, Mat& y) {
  for (; t + kVnniRows <= a.rows; t += kVnniRows) {
    if constexpr (NP == 2) {
      VnniTile4x2(a, w, t, p0, y);
    } else {
      VnniTile<kVnniRows, NP>(a, w, t, p0, y);
    }
  }
  switch (a.rows - t) {
    case 3:
      VnniTile<3, NP>(a, w, t, p0, y);
      break;
    case 2:
      VnniTile<2, NP>(a, w, t, p0, y);
      break;
    case 1:
      VnniTile<1, NP>(a, w, t, p0, y);
      break;
    default:
      break;
  }
}

}  // namespace

namespace int4_internal {

SQ_VNNI_TARGET void FinishRows(float* tile, int rows, int width, const QuantizedActs& a, int t0,
                               int p0, Mat& y) {
  for (int r = 0; r < rows; ++r) {
    const __m512 sa = _mm512_set1_ps(a.scales[t0 + r]);
    for (int c = 0; c < width; c += 16) {
      float* out = tile + r * width + c;
      _mm512_store_ps(out, _mm512_mul_ps(_mm512_load_ps(out), sa));
    }
  }
  StoreTile(tile, rows, width, t0, p0 * kPanel, y);
}

SQ_VNNI_TARGET void VnniPanelRows(const QuantizedActs& a, const PackedInt4& w, int t, int p,
                                  Mat& y) {
  VnniPanels<1>(a, w, p, t, y);
}

}  // namespace int4_internal

// ---------------------------------------------------------------------------------------------

void Int4Gemm(const QuantizedActs& a, const PackedInt4& w, Mat& y, Int4Kernel kernel) {
  Check(a.n_groups == w.n_groups && a.group_pad == w.group_pad,
        "Int4Gemm: activations quantized for " + std::to_string(a.n_groups) + " groups of " +
            std::to_string(a.group_pad) + ", weight has " + std::to_string(w.n_groups) + " of " +
            std::to_string(w.group_pad));
  if (kernel == Int4Kernel::kAuto) kernel = BestInt4Kernel();
  Check(Int4KernelSupported(kernel),
        std::string("Int4Gemm: this CPU cannot run the ") + Int4KernelName(kernel) + " kernel");
  y.resize(a.rows, w.rows);
  if (kernel == Int4Kernel::kAmxInt8 && int4_internal::AmxInt4Fits(w)) {
    return int4_internal::AmxInt4Gemm(a, w, y);
  }
  if (kernel == Int4Kernel::kAvx512Vnni || kernel == Int4Kernel::kAmxInt8) {
    // Work items are pairs of panels (64 channels); an odd last panel runs alone.
    const int items = (w.n_panels + 1) / 2;
#pragma omp parallel for schedule(dynamic, 1)
    for (int it = 0; it < items; ++it) {
      if (2 * it + 1 < w.n_panels) {
        VnniPanels<2>(a, w, 2 * it, 0, y);
      } else {
        VnniPanels<1>(a, w, 2 * it, 0, y);
      }
    }
    return;
  }
#pragma omp parallel for schedule(dynamic, 1)
  for (int p = 0; p < w.n_panels; ++p) {
    if (kernel == Int4Kernel::kAvx2) {
      Avx2Panel(a, w, p, y);
    } else {
      ScalarPanel(a, w, p, y);
    }
  }
}

}  // namespace sq
