// The weight layout the integer W4A4 kernels (quant/integer_gemm.h) read, packed once at load
// from a QuantizedWeight (quant/quantizer.h).
//
// N = out features (rows), K = in features (cols), G = group, Gp = G rounded up to 4,
// S = Gp / 4 steps of 4 columns per group, P = ceil(N / 32) panels of 32 output channels.
//
// Codes are stored UNSIGNED: u = q + 8 for symmetric weights (q in [-8, 7]), u = q for
// asymmetric ones (q in [0, 15]), and the zero point z (8, or the stored zero) is subtracted
// in the integer domain: sum_k a_k (u_k - z) = sum_k a_k u_k - z * sum_k a_k. Unsigned weights
// are what `vpdpbusd` (u8 x s8) wants, and the activations stay signed, so the only correction
// is one multiply of z by the per-(token, group) activation sum: no per-weight sign fix-ups.
//
// One 64-byte block holds 4 columns of 32 channels: byte j = 4 i + c (i = 0..15, c = 0..3)
// carries column k0 + c of channel n0 + i in its LOW nibble and of channel n0 + 16 + i in its
// HIGH nibble. So one zmm load, `& 0x0F` and `& 0xF0`, gives two u8 operands for `vpdpbusd`
// (the high one is 16 u; its integer sum is shifted right by 4, exactly).
// Blocks are ordered [panel][group][step]; columns past a group's end and channels past N are
// 0 (their activations / scales are 0 too), so padding never changes a result.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "quant/quantizer.h"

namespace sq {

inline constexpr int kPanel = 32;       // output channels per panel
inline constexpr int kBlockBytes = 64;  // one 4-column block of a panel
static_assert(kPanel * 4 / 2 == kBlockBytes, "32 channels x 4 columns x 4 bits = 64 bytes");

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};

struct PackedInt4 {
  int rows = 0, cols = 0;  // N, K
  int group = 0;           // G (cols when per channel)
  int n_groups = 0;        // ceil(K / G)
  int group_pad = 0;       // Gp: G rounded up to a multiple of 4
  int n_panels = 0;        // ceil(N / 32)
  bool sym = true;
  std::unique_ptr<uint8_t[], AlignedFree> blocks;  // [P][n_groups][Gp/4][64], 64-byte aligned
  std::vector<float> scales;                       // [P][n_groups][32]; 0 past N
  std::vector<int32_t> zeros;                      // [P][n_groups][32]; 8 when symmetric

  int steps() const { return group_pad / 4; }
  size_t panel_bytes() const { return static_cast<size_t>(n_groups) * steps() * kBlockBytes; }
  const uint8_t* panel(int p) const { return blocks.get() + p * panel_bytes(); }
  const float* panel_scales(int p, int g) const {
    return scales.data() + (static_cast<size_t>(p) * n_groups + g) * kPanel;
  }
  const int32_t* panel_zeros(int p, int g) const {
    return zeros.data() + (static_cast<size_t>(p) * n_groups + g) * kPanel;
  }
  // Unsigned code of (row n, column k) read back from the blocks (for tests).
  int UnsignedCode(int n, int k) const;
};

// Packs a 4-bit weight (symmetric or asymmetric, any group); throws Error for other widths.
PackedInt4 PackInt4ForKernel(const QuantizedWeight& w);

}  // namespace sq
