#include "core/gemm_amx.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/amx.h"
#include "core/error.h"
#include "core/numeric.h"
#include "core/scratch.h"
#include "core/threads.h"

namespace sq {
namespace {

// Compiled for the tile unit whatever the build's -march (as the int4 kernels are), used only
// where AmxUsable says the CPU and the kernel allow it.
#define SQ_AMX_BF16_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw")))

// A tile is 16 rows of 64 bytes: 16 x 32 bf16 of x (rows, depth), 16 pairs of depth x 16
// channels of W (each 4-byte element two consecutive depths of one channel), or 16 x 16 floats
// of y. The register block is 32 rows x 32 channels: 4 sum tiles, 2 of x, 2 of W.
constexpr int kTileRows = 16;
constexpr int kStep = 32;                      // depth one tile of x covers
constexpr int kBlock = 32;                     // rows and channels of the register block
constexpr int kTileElems = kTileRows * kStep;  // bf16 in one tile (1 KB)
// A thread packs W for up to kNc channels at kKc depth (512 KB, in L2) and runs every 32-row
// block of x (32 x kKc bf16, 64 KB) past each of its 32-channel pairs.
constexpr int kKc = 1024;
constexpr int kNc = 256;

// The 16 x 16 matrix of 32-bit elements whose row i is r[i], transposed in place.
SQ_AMX_BF16_TARGET void Transpose16x16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 16; i += 2) {  // lane L: elements 4L, 4L+1 (lo) or 4L+2, 4L+3 (hi) of 2 rows
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int j = 0; j < 16; j += 4) {  // u[j + c], lane L: element 4L + c of rows j..j+3
    u[j] = _mm512_unpacklo_epi64(t[j], t[j + 2]);
    u[j + 1] = _mm512_unpackhi_epi64(t[j], t[j + 2]);
    u[j + 2] = _mm512_unpacklo_epi64(t[j + 1], t[j + 3]);
    u[j + 3] = _mm512_unpackhi_epi64(t[j + 1], t[j + 3]);
  }
  for (int c = 0; c < 4; ++c) {  // gather lane L of u[c], u[4 + c], u[8 + c], u[12 + c]
    const __m512i x0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x44);
    const __m512i x1 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xEE);
    const __m512i y0 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x44);
    const __m512i y1 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xEE);
    r[c] = _mm512_shuffle_i32x4(x0, y0, 0x88);
    r[4 + c] = _mm512_shuffle_i32x4(x0, y0, 0xDD);
    r[8 + c] = _mm512_shuffle_i32x4(x1, y1, 0x88);
    r[12 + c] = _mm512_shuffle_i32x4(x1, y1, 0xDD);
  }
}

struct Problem {
  const uint16_t* x;  // bf16 [Mp, Kp], zero past M rows and K columns
  const uint16_t* w;  // bf16 [N, K]
  float* y;           // [Mp, Np]
  int64_t M, K, N, Mp, Kp, Np;
};

// W's channels [n0, n0 + 32) (zero past N) at depth [k0, k0 + kStep * steps) (zero past K), as
// `steps` pairs of tiles: out[(s * 2 + h) * kTileElems + p * 32 + 2 * j + e] =
// W[n0 + 16 h + j, k0 + kStep s + 2 p + e], depth pair p the tile's row.
SQ_AMX_BF16_TARGET void PackPair(const Problem& g, int64_t n0, int64_t k0, int steps,
                                 uint16_t* out) {
  for (int s = 0; s < steps; ++s) {
    const int64_t k = k0 + int64_t{kStep} * s;
    const int64_t valid = std::clamp<int64_t>(g.K - k, 0, kStep);
    const __mmask32 mask = valid == kStep ? ~__mmask32{0} : (__mmask32{1} << valid) - 1;
    for (int h = 0; h < 2; ++h) {
      __m512i r[16];
      for (int j = 0; j < 16; ++j) {
        const int64_t n = n0 + 16 * h + j;
        r[j] = n < g.N ? _mm512_maskz_loadu_epi16(mask, g.w + n * g.K + k) : _mm512_setzero_si512();
      }
      Transpose16x16(r);
      uint16_t* tile = out + (2 * s + h) * kTileElems;
      for (int p = 0; p < 16; ++p) _mm512_store_si512(tile + p * kStep, r[p]);
    }
  }
}

// y's 32 x 32 block at c (row stride ldc floats) = (accumulate ? c : 0) + x's 32 rows at a (row
// stride lda bf16) times the packed pair b, over `steps` tiles of depth.
SQ_AMX_BF16_TARGET void Block(const uint16_t* a, int64_t lda, const uint16_t* b, int steps,
                              float* c, int64_t ldc, bool accumulate) {
  const int64_t cs = ldc * 4, as = lda * 2;
  float* c1 = c + kTileRows * ldc;
  if (accumulate) {
    _tile_loadd(0, c, cs);
    _tile_loadd(1, c + 16, cs);
    _tile_loadd(2, c1, cs);
    _tile_loadd(3, c1 + 16, cs);
  } else {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  }
  for (int s = 0; s < steps; ++s) {
    _tile_loadd(4, a + s * kStep, as);
    _tile_loadd(5, a + kTileRows * lda + s * kStep, as);
    _tile_loadd(6, b + 2 * s * kTileElems, 64);
    _tile_loadd(7, b + (2 * s + 1) * kTileElems, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, c, cs);
  _tile_stored(1, c + 16, cs);
  _tile_stored(2, c1, cs);
  _tile_stored(3, c1 + 16, cs);
}

// Channel pairs [p0, p1) of y (32 channels each): for each kKc of depth, pack W for them once,
// then run every 32-row block of x past each pair.
SQ_AMX_BF16_TARGET void RunPairs(const Problem& g, int64_t p0, int64_t p1) {
  thread_local std::vector<uint16_t> store;
  uint16_t* b = AlignedScratch(store, static_cast<size_t>(kNc / kBlock) * kKc * 2 * kTileRows);
  const AmxTileConfig config;
  _tile_loadconfig(&config);
  for (int64_t k0 = 0; k0 < g.Kp; k0 += kKc) {
    const int steps = static_cast<int>(std::min<int64_t>(kKc, g.Kp - k0) / kStep);
    const int64_t pair_elems = int64_t{steps} * 2 * kTileElems;
    for (int64_t p = p0; p < p1; ++p) PackPair(g, p * kBlock, k0, steps, b + (p - p0) * pair_elems);
    for (int64_t m0 = 0; m0 < g.Mp; m0 += kBlock) {
      for (int64_t p = p0; p < p1; ++p) {
        Block(g.x + m0 * g.Kp + k0, g.Kp, b + (p - p0) * pair_elems, steps,
              g.y + m0 * g.Np + p * kBlock, g.Np, k0 > 0);
      }
    }
  }
  _tile_release();
}

int64_t RoundUp(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

// x rounded to bf16 in [Mp, Kp], zero padded.
void RoundInputs(const Mat& x, int64_t Mp, int64_t Kp, uint16_t* out) {
  const int64_t M = x.rows(), K = x.cols();
#pragma omp parallel for schedule(static) if (M * K >= (1 << 16))
  for (int64_t i = 0; i < Mp; ++i) {
    uint16_t* o = out + i * Kp;
    const float* r = x.data() + i * K;
    const int64_t n = i < M ? K : 0;
    for (int64_t k = 0; k < n; ++k) o[k] = FloatToBf16(r[k]);
    std::fill(o + n, o + Kp, uint16_t{0});
  }
}

}  // namespace

bool AmxBf16Available() { return AmxUsable(AmxOp::kBf16); }

void AmxBf16Gemm(const Mat& x, const TensorView& w, Mat& y) {
  Check(AmxBf16Available(), "AmxBf16Gemm: this process may not use AMX tiles");
  Check(w.dtype == DType::kBF16 && w.shape.size() == 2 && w.cols() == x.cols(), [&] {
    return "AmxBf16Gemm: weight " + w.ShapeString() + " (" + DTypeName(w.dtype) +
           ") is not a bf16 weight for an input of " + std::to_string(x.cols()) + " columns";
  });
  const int64_t M = x.rows(), K = x.cols(), N = w.rows();
  y.resize(M, N);
  if (y.size() == 0) return;
  const int64_t Mp = RoundUp(M, kBlock), Kp = RoundUp(std::max<int64_t>(K, 1), kStep),
                Np = RoundUp(N, kBlock);
  thread_local std::vector<uint16_t> xs;  // kept: a fresh buffer faulted in 5% of a forward
  uint16_t* xb = AlignedScratch(xs, static_cast<size_t>(Mp * Kp));
  RoundInputs(x, Mp, Kp, xb);
  // y itself when the blocks tile it exactly, else a padded buffer copied into it at the end.
  const bool direct = Mp == M && Np == N;
  Mat padded = direct ? Mat() : Mat(Mp, Np);
  const Problem g{xb,
                  reinterpret_cast<const uint16_t*>(w.data),
                  direct ? y.data() : padded.data(),
                  M,
                  K,
                  N,
                  Mp,
                  Kp,
                  Np};
  const int64_t pairs = Np / kBlock, threads = NumThreads();
  // About 4 chunks a thread so a core slowed by other work takes fewer; each at most kNc.
  const int64_t chunk = std::clamp<int64_t>(pairs / (4 * threads), 1, kNc / kBlock);
  const int64_t chunks = (pairs + chunk - 1) / chunk;
#pragma omp parallel for schedule(dynamic, 1) if (M * N * K >= (1 << 20))
  for (int64_t c = 0; c < chunks; ++c) RunPairs(g, c * chunk, std::min(pairs, (c + 1) * chunk));
  if (!direct) y = padded.topLeftCorner(M, N);
}

}  // namespace sq
