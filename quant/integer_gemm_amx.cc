// The int4 W4A4 GEMM on AMX tiles (core/amx.h): the activation codes (s8) of 32 tokens as two
// A tiles, one panel's weight codes (u8, 32 channels) as two B tiles, 4 int32 sum tiles per
// weight group, then the VNNI kernel's own group-end and finish (quant/integer_gemm_internal.h).
// Integer sums are exact, so the result is the VNNI kernel's bit for bit.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <vector>

#include "core/amx.h"
#include "core/scratch.h"
#include "quant/integer_gemm_internal.h"

namespace sq::int4_internal {
namespace {

// VNNI too, so the shared group end (VnniGroupEnd) inlines here.
#define SQ_AMX_TARGET __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vnni")))

constexpr int kRows = 32;         // tokens per block: two A tiles of 16
constexpr int kTileCols = 64;     // activation columns (bytes) in one A tile row
constexpr int kTileBytes = 1024;  // 16 rows x 64 bytes
constexpr int kPairBytes = 2 * kTileBytes;
constexpr int kChunkPanels = 8;  // 256 channels a work item

// Panel p's weight codes as B tiles, [group][step][lo, hi]: a packed block (4 columns of 32
// channels) is one B tile row already (byte 4 i + c: channel i, column c); its low nibbles are
// channels 0..15, its high nibbles (kept in place: 16 x the code) channels 16..31.
SQ_AMX_TARGET void UnpackPanel(const PackedInt4& w, int p, uint8_t* out) {
  const __m512i lo = _mm512_set1_epi8(0x0F), hi = _mm512_set1_epi8(static_cast<char>(0xF0));
  const int steps = w.group_pad / kTileCols;
  for (int g = 0; g < w.n_groups; ++g) {
    for (int s = 0; s < steps; ++s) {
      const uint8_t* b = w.panel(p) + (static_cast<size_t>(g) * w.steps() + 16 * s) * kBlockBytes;
      uint8_t* t = out + (static_cast<size_t>(g) * steps + s) * kPairBytes;
      for (int r = 0; r < 16; ++r) {
        const __m512i x = _mm512_load_si512(b + r * kBlockBytes);
        _mm512_store_si512(t + r * 64, _mm512_and_si512(x, lo));
        _mm512_store_si512(t + kTileBytes + r * 64, _mm512_and_si512(x, hi));
      }
    }
  }
}

// Tokens [t0, t0 + 32) of panel p: tiles 0/1 rows 0..15 (lo/hi channels), 2/3 rows 16..31.
SQ_AMX_TARGET void Block(const QuantizedActs& a, const PackedInt4& w, const uint8_t* bt, int t0,
                         int p, Mat& y) {
  alignas(64) int32_t acc[kRows][32];
  alignas(64) float tile[kRows][kPanel] = {};
  const int steps = w.group_pad / kTileCols, stride = a.stride();
  for (int g = 0; g < w.n_groups; ++g) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    const int8_t* a0 = a.row(t0) + g * w.group_pad;
    const uint8_t* b = bt + static_cast<size_t>(g) * steps * kPairBytes;
    for (int s = 0; s < steps; ++s) {
      _tile_loadd(4, a0 + kTileCols * s, stride);
      _tile_loadd(5, a0 + 16 * stride + kTileCols * s, stride);
      _tile_loadd(6, b + s * kPairBytes, 64);
      _tile_loadd(7, b + s * kPairBytes + kTileBytes, 64);
      _tile_dpbsud(0, 4, 6);
      _tile_dpbsud(1, 4, 7);
      _tile_dpbsud(2, 5, 6);
      _tile_dpbsud(3, 5, 7);
    }
    _tile_stored(0, &acc[0][0], 128);
    _tile_stored(1, &acc[0][16], 128);
    _tile_stored(2, &acc[16][0], 128);
    _tile_stored(3, &acc[16][16], 128);
    const int32_t* sums = a.sums.data() + static_cast<size_t>(t0) * w.n_groups + g;
    for (int r = 0; r < kRows; ++r) {
      VnniGroupEnd<1>(reinterpret_cast<const __m512i*>(acc[r]), w, p, g, sums[r * w.n_groups],
                      tile[r]);
    }
  }
  FinishRows(&tile[0][0], kRows, kPanel, a, t0, p, y);
}

// Panels [p0, p1): their weight tiles unpacked once (at most kChunkPanels, ~1 MB at K = 4096,
// in L2), then each 32-token block of x (in L2 too) meets every one of them: x is read once
// per chunk, not once per panel.
SQ_AMX_TARGET void Panels(const QuantizedActs& a, const PackedInt4& w, int p0, int p1, Mat& y) {
  const int blocks = a.rows / kRows;
  if (blocks > 0) {
    thread_local std::vector<uint8_t> store;
    const size_t panel_bytes =
        static_cast<size_t>(w.n_groups) * (w.group_pad / kTileCols) * kPairBytes;
    uint8_t* bt = AlignedScratch(store, panel_bytes * (p1 - p0));
    for (int p = p0; p < p1; ++p) UnpackPanel(w, p, bt + (p - p0) * panel_bytes);
    const AmxTileConfig config;
    _tile_loadconfig(&config);
    for (int b = 0; b < blocks; ++b) {
      for (int p = p0; p < p1; ++p) Block(a, w, bt + (p - p0) * panel_bytes, b * kRows, p, y);
    }
    _tile_release();
  }
  for (int p = p0; p < p1; ++p) VnniPanelRows(a, w, blocks * kRows, p, y);  // T mod 32 tokens
}

}  // namespace

bool AmxInt4Fits(const PackedInt4& w) { return w.group_pad % kTileCols == 0; }

void AmxInt4Gemm(const QuantizedActs& a, const PackedInt4& w, Mat& y) {
  // Chunks of up to kChunkPanels, about 4 a thread so a core slowed by other work takes fewer.
  const int threads = omp_get_max_threads();
  const int chunk = std::clamp(w.n_panels / (4 * threads), 1, kChunkPanels);
  const int chunks = (w.n_panels + chunk - 1) / chunk;
#pragma omp parallel for schedule(dynamic, 1)
  for (int c = 0; c < chunks; ++c)
    Panels(a, w, c * chunk, std::min(w.n_panels, (c + 1) * chunk), y);
}

}  // namespace sq::int4_internal
