#include "core/gemm.h"

#include "core/error.h"
#include "core/gemm_amx.h"

namespace sq {
namespace {
MatmulPrecision g_precision = MatmulPrecision::kF32;  // set once, at a command's start
}  // namespace

void SetMatmulPrecision(MatmulPrecision p) {
  Check(p == MatmulPrecision::kF32 || kHavePackedGemm,
        "--matmul-precision bf16 needs a build with the packed GEMM (AVX2+FMA+F16C)");
  g_precision = p;
}

MatmulPrecision GetMatmulPrecision() { return g_precision; }

const char* MatmulPrecisionName() {
  if (g_precision == MatmulPrecision::kF32) return "f32";
  return AmxBf16Available() ? "bf16 (AMX tiles)" : "bf16 (float kernel)";
}

}  // namespace sq

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "core/numeric.h"
#include "core/scratch.h"
#include "core/threads.h"

namespace sq {
namespace {

// The vector unit the register tile is built from. Every output is one FMA chain per kKc block
// of depth, whatever the width; the two kKc differ, so AVX2 and AVX-512 hosts may differ in the
// last bits (each host alone is deterministic). AVX-512 hosts (Sapphire Rapids) run the wider
// tile ~1.4x faster, as Eigen and ONNX Runtime's MLAS do there.
#if defined(__AVX512F__)
struct Simd {
  using V = __m512;
  static constexpr int kLanes = 16;
  static V Zero() { return _mm512_setzero_ps(); }
  static V Load(const float* p) { return _mm512_load_ps(p); }
  static V LoadU(const float* p) { return _mm512_loadu_ps(p); }
  static void StoreU(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V Broadcast(const float* p) { return _mm512_set1_ps(*p); }
  static V Fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V Add(V a, V b) { return _mm512_add_ps(a, b); }
};
// 24 of the 32 zmm registers hold the tile's sums, 2 a row of the W panel, 1 a value of x.
constexpr int kMr = 12;
// Sapphire Rapids: 48 KB L1d, 2 MB L2 per core. The W panel kKc deep (32 KB) stays in L1.
constexpr int kKc = 256;
#else
struct Simd {
  using V = __m256;
  static constexpr int kLanes = 8;
  static V Zero() { return _mm256_setzero_ps(); }
  static V Load(const float* p) { return _mm256_load_ps(p); }
  static V LoadU(const float* p) { return _mm256_loadu_ps(p); }
  static void StoreU(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V Broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  static V Fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V Add(V a, V b) { return _mm256_add_ps(a, b); }
};
// 12 of the 16 ymm registers hold the tile's sums, 2 a row of the W panel, 1 a value of x.
constexpr int kMr = 6;
// Zen 2: 32 KB L1d, 512 KB L2 per core. Measured on 512 x 2048 x 8192: kKc 512 beat 256 by ~10%
// (y is read and written once per kKc of depth).
constexpr int kKc = 512;
#endif

// The register tile: kMr rows of x by kNr output channels (two vectors).
constexpr int kNr = 2 * Simd::kLanes;
// Cache blocks: a W panel kKc deep stays in L1 while it meets every row tile of an x block (kMc
// rows x kKc, in L2); a thread packs kNc channels of W at a time and sweeps all of x against them.
constexpr int kMc = 96;
constexpr int kNc = 1024;
static_assert(kMc % kMr == 0 && kNc % kNr == 0 && kKc % 8 == 0 && kNr % 8 == 0);

// c [R, kNr] (row stride ldc) = (accumulate ? c : 0) + a [R, kc] (row stride lda, read in place)
// * b-panel over depth kc. Each sum is one FMA chain over k in order, then one add to c: the
// same operations whatever R and whichever thread runs the tile, so an output does not depend on
// how the work is split. x is not packed: its R rows are R sequential streams the hardware
// prefetcher follows, and packing them cost ~5% of a 1B forward (x was packed once per chunk).
template <int R>
void Kernel(int kc, const float* a, int64_t lda, const float* b, float* c, int64_t ldc,
            bool accumulate) {
  constexpr int kL = Simd::kLanes;
  typename Simd::V lo[R], hi[R];
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) {
    lo[r] = hi[r] = Simd::Zero();
    // y's tile is far from cache (y is swept once per kKc): start loading it now (+12%).
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + kNr - 1), _MM_HINT_T0);
  }
  for (int k = 0; k < kc; ++k, b += kNr) {
    const typename Simd::V b0 = Simd::Load(b), b1 = Simd::Load(b + kL);
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      const typename Simd::V ar = Simd::Broadcast(a + r * lda + k);
      lo[r] = Simd::Fma(ar, b0, lo[r]);
      hi[r] = Simd::Fma(ar, b1, hi[r]);
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) {
    float* cr = c + r * ldc;
    if (accumulate) {
      lo[r] = Simd::Add(Simd::LoadU(cr), lo[r]);
      hi[r] = Simd::Add(Simd::LoadU(cr + kL), hi[r]);
    }
    Simd::StoreU(cr, lo[r]);
    Simd::StoreU(cr + kL, hi[r]);
  }
}

using KernelFn = void (*)(int, const float*, int64_t, const float*, float*, int64_t, bool);

// By row count: a tile with fewer than kMr rows (the last of x) computes only those.
template <int... R>
constexpr std::array<KernelFn, kMr + 1> KernelTable(std::integer_sequence<int, R...>) {
  return {nullptr, Kernel<R + 1>...};
}
constexpr auto kKernels = KernelTable(std::make_integer_sequence<int, kMr>{});

// One tile of y: straight into y when it has all kNr channels, else through a buffer of which
// only the `cols` valid channels are added (the same single add as the kernel's own).
void Tile(int rows, int cols, int kc, const float* a, int64_t lda, const float* b, float* c,
          int64_t ldc, bool accumulate) {
  if (cols == kNr) return kKernels[rows](kc, a, lda, b, c, ldc, accumulate);
  alignas(64) float t[kMr * kNr];
  kKernels[rows](kc, a, lda, b, t, kNr, false);
  for (int r = 0; r < rows; ++r) {
    for (int j = 0; j < cols; ++j) {
      float& out = c[r * ldc + j];
      out = accumulate ? out + t[r * kNr + j] : t[r * kNr + j];
    }
  }
}

// Eight consecutive weights widened to float.
template <DType D>
__m256 Load8(const std::byte* p) {
  if constexpr (D == DType::kF32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
  } else {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    if constexpr (D == DType::kF16) return _mm256_cvtph_ps(h);
    // bfloat16 is the top half of a float.
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
}

template <DType D>
float Load1(const std::byte* p) {
  if constexpr (D == DType::kF32) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  } else {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return D == DType::kF16 ? F16ToFloat(h) : Bf16ToFloat(h);
  }
}

// Transposes the 8 x 8 block whose row i is r[i], in place.
void Transpose8x8(__m256 r[8]) {
  __m256 t[8], s[8];
  for (int i = 0; i < 8; i += 2) {  // t[i] pairs rows i, i+1 in elements 0,1 | 4,5 ...
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {  // s[i + c] holds column c | c + 4 of rows i..i+3
    s[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int c = 0; c < 4; ++c) {
    r[c] = _mm256_permute2f128_ps(s[c], s[c + 4], 0x20);
    r[c + 4] = _mm256_permute2f128_ps(s[c], s[c + 4], 0x31);
  }
}

// Packs the W panel of channels [n0, n0 + cols) at depth [k0, k0 + kc) as kc rows of kNr floats,
// b[k * kNr + j] = W[n0 + j, k0 + k], widened from the stored dtype; channels past cols are 0.
template <DType D>
void PackPanel(const std::byte* w, int64_t K, int64_t n0, int cols, int64_t k0, int kc,
               float* b) {
  constexpr int64_t es = D == DType::kF32 ? 4 : 2;
  const std::byte* rows[kNr];
  for (int j = 0; j < kNr; ++j) rows[j] = j < cols ? w + ((n0 + j) * K + k0) * es : nullptr;
  int k = 0;
  for (; k + 8 <= kc; k += 8) {
    for (int g = 0; g < kNr; g += 8) {
      __m256 r[8];
      for (int i = 0; i < 8; ++i) {
        r[i] = rows[g + i] ? Load8<D>(rows[g + i] + k * es) : _mm256_setzero_ps();
      }
      Transpose8x8(r);
      for (int i = 0; i < 8; ++i) _mm256_store_ps(b + (k + i) * kNr + g, r[i]);
    }
  }
  for (; k < kc; ++k) {
    for (int j = 0; j < kNr; ++j) b[k * kNr + j] = rows[j] ? Load1<D>(rows[j] + k * es) : 0.0f;
  }
}

struct Problem {
  const float* x;
  const std::byte* w;
  float* y;
  int64_t M, K, N;
};

// y's channel panels [p0, p1) (kNr channels each): for each kNc channels and kKc depth, pack
// that W block once, then run every x block past it.
template <DType D>
void GemmPanels(const Problem& g, int64_t p0, int64_t p1) {
  thread_local std::vector<float> b_store;
  float* b = AlignedScratch(b_store, static_cast<size_t>(kKc) * kNc);
  for (int64_t jp = p0; jp < p1; jp += kNc / kNr) {
    const int np = static_cast<int>(std::min<int64_t>(kNc / kNr, p1 - jp));
    for (int64_t k0 = 0; k0 < g.K; k0 += kKc) {
      const int kc = static_cast<int>(std::min<int64_t>(kKc, g.K - k0));
      for (int p = 0; p < np; ++p) {
        const int64_t n0 = (jp + p) * kNr;
        PackPanel<D>(g.w, g.K, n0, static_cast<int>(std::min<int64_t>(kNr, g.N - n0)), k0, kc,
                     b + p * kc * kNr);
      }
      for (int64_t i0 = 0; i0 < g.M; i0 += kMc) {
        const int mc = static_cast<int>(std::min<int64_t>(kMc, g.M - i0));
        for (int p = 0; p < np; ++p) {
          const int64_t n0 = (jp + p) * kNr;
          const int cols = static_cast<int>(std::min<int64_t>(kNr, g.N - n0));
          for (int t = 0; t * kMr < mc; ++t) {
            const int64_t i = i0 + t * kMr;
            Tile(std::min(kMr, mc - t * kMr), cols, kc, g.x + i * g.K + k0, g.K, b + p * kc * kNr,
                 g.y + i * g.N + n0, g.N, k0 > 0);
          }
        }
      }
    }
  }
}

// Few rows of x (decoding one token): packing W would cost more than the product, so each
// output is a dot product of a row of x with a row of W read in place: one 8-lane sum over k in
// order, folded at the end. C channels at a time, for C streams of W in flight.
template <DType D, int R, int C>
void DotChannels(const Problem& g, int64_t n) {
  constexpr int64_t es = D == DType::kF32 ? 4 : 2;
  const std::byte* w = g.w + n * g.K * es;
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  }
  int64_t k = 0;
  for (; k + 8 <= g.K; k += 8) {
    for (int c = 0; c < C; ++c) {
      const __m256 wc = Load8<D>(w + (c * g.K + k) * es);
      for (int r = 0; r < R; ++r) {
        acc[r][c] = _mm256_fmadd_ps(_mm256_loadu_ps(g.x + r * g.K + k), wc, acc[r][c]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) {
      alignas(32) float l[8];
      _mm256_store_ps(l, acc[r][c]);
      float sum = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
      // An explicit fma: left to the compiler, `sum += x * w` was fused for one dtype and not
      // for another (bit differences between F32 and BF16 storage of the same values).
      for (int64_t j = k; j < g.K; ++j) {
        sum = std::fma(g.x[r * g.K + j], Load1<D>(w + (c * g.K + j) * es), sum);
      }
      g.y[r * g.N + n + c] = sum;
    }
  }
}

template <DType D, int R>
void DotRows(const Problem& g, int64_t n0, int64_t n1) {
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) DotChannels<D, R, 4>(g, n);
  for (; n < n1; ++n) DotChannels<D, R, 1>(g, n);
}

// Up to this many rows take DotRows, more the packed kernel (4 x 3 sums fill the registers).
constexpr int kMaxDotRows = 3;

template <DType D>
void GemmChannels(const Problem& g, int64_t n0, int64_t n1) {
  switch (g.M) {
    case 1:
      return DotRows<D, 1>(g, n0, n1);
    case 2:
      return DotRows<D, 2>(g, n0, n1);
    case 3:
      return DotRows<D, 3>(g, n0, n1);
  }
}

// Multiply-adds below which PackedGemm runs on the calling thread alone.
constexpr int64_t kMinParallelWork = int64_t{1} << 18;
// Threads take chunks of channels as they come free, so a core slowed by other work on the
// machine gets fewer (a static split waited for it). About this many chunks per thread, each at
// most kNc channels: more balance, but each chunk reads all of x again.
constexpr int64_t kChunksPerThread = 4;
// ... and at least this many panels (256 channels) unless that leaves a thread idle: chunks of 64
// channels made the 512-channel k/v projections ~15% slower (when x was packed once per chunk).
constexpr int64_t kMinChunkPanels = 256 / kNr;

// Channel panels [p0, p1) of y (kNr channels each, the last maybe fewer).
template <DType D>
void RunPanels(const Problem& g, int64_t p0, int64_t p1) {
  if (g.M > kMaxDotRows) return GemmPanels<D>(g, p0, p1);
  GemmChannels<D>(g, p0 * kNr, std::min(g.N, p1 * kNr));
}

using PanelsFn = void (*)(const Problem&, int64_t, int64_t);

PanelsFn PanelsFor(DType t) {
  switch (t) {
    case DType::kF32:
      return RunPanels<DType::kF32>;
    case DType::kF16:
      return RunPanels<DType::kF16>;
    case DType::kBF16:
      return RunPanels<DType::kBF16>;
    default:
      throw Error(std::string("PackedGemm: weights of dtype ") + DTypeName(t) + " are not float");
  }
}

// x with each value rounded to the nearest bf16 (kept as float).
Mat RoundedToBf16(const Mat& x) {
  Mat r(x.rows(), x.cols());
  for (Eigen::Index i = 0; i < x.size(); ++i) r.data()[i] = Bf16ToFloat(FloatToBf16(x.data()[i]));
  return r;
}

void FloatGemm(const Mat& x, const TensorView& w, Mat& y) {
  const PanelsFn run = PanelsFor(w.dtype);
  y.resize(x.rows(), w.rows());
  if (y.size() == 0) return;
  if (x.cols() == 0) {  // an empty sum
    y.setZero();
    return;
  }
  const Problem g{x.data(), w.data, y.data(), x.rows(), x.cols(), w.rows()};
  const int64_t panels = (g.N + kNr - 1) / kNr;
  const int64_t threads = NumThreads();
  const int64_t min_chunk = std::min(kMinChunkPanels, (panels + threads - 1) / threads);
  const int64_t chunk =
      std::clamp<int64_t>(panels / (kChunksPerThread * threads), min_chunk, kNc / kNr);
  const int64_t chunks = (panels + chunk - 1) / chunk;
  // Waking a second thread costs more than a product this small. Which thread computes a chunk,
  // and how large chunks are, never changes how an output is computed.
  const bool parallel = g.M * g.N * g.K >= kMinParallelWork;
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
  for (int64_t c = 0; c < chunks; ++c) run(g, c * chunk, std::min(panels, (c + 1) * chunk));
}

}  // namespace

void PackedGemm(const Mat& x, const TensorView& w, Mat& y) {
  Check(w.shape.size() == 2 && w.cols() == x.cols(), [&] {
    return "PackedGemm: weight " + w.ShapeString() + " does not fit input of " +
           std::to_string(x.cols()) + " columns";
  });
  if (GetMatmulPrecision() == MatmulPrecision::kBf16 && w.dtype == DType::kBF16) {
    if (x.rows() > kMaxDotRows && AmxBf16Available()) return AmxBf16Gemm(x, w, y);
    return FloatGemm(RoundedToBf16(x), w, y);
  }
  FloatGemm(x, w, y);
}

}  // namespace sq

#else  // no AVX2 + FMA + F16C: callers use Eigen

namespace sq {

void PackedGemm(const Mat&, const TensorView&, Mat&) {
  throw Error("PackedGemm: this build has no AVX2+FMA kernel (kHavePackedGemm is false)");
}

}  // namespace sq

#endif
