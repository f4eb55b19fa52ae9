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

}  // namespace sq
