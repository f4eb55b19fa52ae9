// Intel AMX (Sapphire Rapids and later): a tile unit beside each core that multiplies 16 x 64-byte
// tiles of bf16 or int8, ~14x the FP32 FMA rate. Linux hands its state to a process only on
// request (arch_prctl ARCH_REQ_XCOMP_PERM, kernel 5.16+); a tile instruction before that faults.
// The kernels that use it: core/gemm_amx.cc (bf16) and quant/integer_gemm_amx.cc (int8).
#pragma once

#include <cstdint>

namespace sq {

enum class AmxOp { kBf16, kInt8 };

// Whether this CPU has the tile unit with `op` (CPUID) and the kernel lets this process use it
// (asked once per process).
bool AmxUsable(AmxOp op);

// The one tile shape sinkquant's kernels use: all 8 tiles 16 rows of 64 bytes (palette 1), so a
// tile holds 16 x 32 bf16, 16 x 64 int8, or 16 x 16 float / int32 sums. Loaded per thread
// (_tile_loadconfig) before its first tile instruction.
struct alignas(64) AmxTileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t bytes_per_row[16] = {64, 64, 64, 64, 64, 64, 64, 64};
  uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
};
static_assert(sizeof(AmxTileConfig) == 64);

}  // namespace sq
