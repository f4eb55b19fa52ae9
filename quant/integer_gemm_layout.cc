#include "quant/integer_gemm_layout.h"

#include <cstring>

#include "core/error.h"

namespace sq {

namespace {

// Byte and nibble shift of (channel i in the panel, column c in the block).
struct Slot {
  int byte, shift;
};
Slot SlotOf(int i, int c) { return {4 * (i % 16) + c, i < 16 ? 0 : 4}; }

}  // namespace

int PackedInt4::UnsignedCode(int n, int k) const {
  const int p = n / kPanel, g = k / group, kk = k % group;
  const Slot s = SlotOf(n % kPanel, kk % 4);
  const uint8_t* b = panel(p) + (static_cast<size_t>(g) * steps() + kk / 4) * kBlockBytes;
  return (b[s.byte] >> s.shift) & 0xF;
}

PackedInt4 PackInt4ForKernel(const QuantizedWeight& w) {
  Check(w.grid.bits == 4,
        "integer int4 kernel: weight has " + std::to_string(w.grid.bits) + " bits, expected 4");
  PackedInt4 p;
  p.rows = w.rows;
  p.cols = w.cols;
  p.group = w.group;
  p.n_groups = w.n_groups();
  p.group_pad = (w.group + 3) / 4 * 4;
  p.n_panels = (w.rows + kPanel - 1) / kPanel;
  p.sym = w.grid.sym;
  const size_t bytes = p.n_panels * p.panel_bytes();
  p.blocks.reset(static_cast<uint8_t*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64)));
  Check(p.blocks != nullptr, "integer int4 kernel: out of memory packing a weight");
  std::memset(p.blocks.get(), 0, bytes);
  const size_t n_params = static_cast<size_t>(p.n_panels) * p.n_groups * kPanel;
  p.scales.assign(n_params, 0.0f);
  p.zeros.assign(n_params, 0);

  // Parallel over panels: channels i and i + 16 of a panel share bytes.
#pragma omp parallel for schedule(static)
  for (int pi = 0; pi < p.n_panels; ++pi) {
    for (int i = 0; i < kPanel && pi * kPanel + i < w.rows; ++i) {
      const int n = pi * kPanel + i;
      uint8_t* panel = p.blocks.get() + pi * p.panel_bytes();
      for (int g = 0; g < p.n_groups; ++g) {
        const QuantParams qp = w.Params(n, g);
        const size_t at = (static_cast<size_t>(pi) * p.n_groups + g) * kPanel + i;
        p.scales[at] = qp.scale;
        p.zeros[at] = p.sym ? 8 : qp.zero;
        const int k0 = g * w.group, k1 = std::min(w.cols, k0 + w.group);
        for (int k = k0; k < k1; ++k) {
          const int u = w.Code(n, k) + (p.sym ? 8 : 0);
          const Slot s = SlotOf(i, (k - k0) % 4);
          uint8_t* b = panel + (static_cast<size_t>(g) * p.steps() + (k - k0) / 4) * kBlockBytes;
          b[s.byte] = static_cast<uint8_t>(b[s.byte] | (u << s.shift));
        }
      }
    }
  }
  return p;
}

}  // namespace sq
