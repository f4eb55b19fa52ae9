#include "core/amx.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace sq {
namespace {

// CPUID leaf 7, EDX: AMX-BF16 (bit 22), AMX-TILE (24), AMX-INT8 (25).
bool CpuHas(AmxOp op) {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool tile = d & (1u << 24);
  return tile && (d & (1u << (op == AmxOp::kBf16 ? 22 : 25)));
}

bool Granted() {
  // ARCH_REQ_XCOMP_PERM (0x1023) for XFEATURE_XTILEDATA (18).
  static const bool granted = syscall(SYS_arch_prctl, 0x1023, 18) == 0;
  return granted;
}

}  // namespace

bool AmxUsable(AmxOp op) {
  // Asked once: CPUID traps to the hypervisor in a VM, and kernels call this per product.
  static const bool bf16 = CpuHas(AmxOp::kBf16) && Granted();
  static const bool int8 = CpuHas(AmxOp::kInt8) && Granted();
  return op == AmxOp::kBf16 ? bf16 : int8;
}

}  // namespace sq
