// Peak memory of this process, split as Linux splits resident memory: anonymous (heap, owned
// tensors) and file-backed (pages of memory-mapped checkpoints, which the kernel can drop and
// re-read). The kernel keeps only the peak of the total (VmHWM), so a background thread samples
// the two parts; StartMemorySampler() once at start, PeakMemory() at the end.
#pragma once

namespace sq {

struct MemoryUse {
  double peak_rss_mib = 0;   // VmHWM: exact peak of the total
  double peak_anon_mib = 0;  // sampled peak of RssAnon
  double peak_file_mib = 0;  // sampled peak of RssFile + RssShmem
};

void StartMemorySampler();
MemoryUse PeakMemory();

// Lets the heap keep the activation-sized buffers a float forward frees and allocates again at
// every linear (up to 32 MB each), instead of glibc handing them back to the kernel and faulting
// them in again zeroed: that churn was 30% of a 1B prefill on the AMX path and 6-15% on the float
// one (bench, eval). Commands that only run the float model call it (bench, generate, float
// eval); recipes do not: there it bought no time and kept 5% more memory (1B rotate-gptq
// quantize: 7824 MiB against 7468). Buffers past 32 MB still go back to the kernel at once.
void KeepFreedHeapMemory();

}  // namespace sq
