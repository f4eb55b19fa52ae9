#include "core/memory.h"

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <limits>
#include <mutex>
#include <thread>

namespace sq {

namespace {

struct Sample {
  double rss_hwm = 0, anon = 0, file = 0;  // MiB
};

Sample ReadStatus() {
  Sample s;
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return s;
  char line[256];
  double shmem = 0;
  while (std::fgets(line, sizeof line, f)) {
    double kb = 0;
    if (std::sscanf(line, "VmHWM: %lf kB", &kb) == 1) s.rss_hwm = kb / 1024;
    if (std::sscanf(line, "RssAnon: %lf kB", &kb) == 1) s.anon = kb / 1024;
    if (std::sscanf(line, "RssFile: %lf kB", &kb) == 1) s.file = kb / 1024;
    if (std::sscanf(line, "RssShmem: %lf kB", &kb) == 1) shmem = kb / 1024;
  }
  std::fclose(f);
  s.file += shmem;
  return s;
}

std::atomic<double> g_peak_anon{0}, g_peak_file{0};

void Record(const Sample& s) {
  auto raise = [](std::atomic<double>& peak, double v) {
    double cur = peak.load();
    while (v > cur && !peak.compare_exchange_weak(cur, v)) {
    }
  };
  raise(g_peak_anon, s.anon);
  raise(g_peak_file, s.file);
}

}  // namespace

void KeepFreedHeapMemory() {
  // A fixed threshold (glibc's own ceiling for its adaptive one) and no trimming of the heap's
  // free top: what the heap keeps is memory that was live before, reused by the next buffer.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
}

void StartMemorySampler() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Detached: it only reads /proc and two atomics, and dies with the process.
    std::thread([] {
      for (;;) {
        Record(ReadStatus());
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }).detach();
  });
}

MemoryUse PeakMemory() {
  const Sample now = ReadStatus();
  Record(now);
  MemoryUse m;
  m.peak_rss_mib = now.rss_hwm;
  m.peak_anon_mib = g_peak_anon.load();
  m.peak_file_mib = g_peak_file.load();
  // Sampling can miss a short peak; the parts never exceed the exact total peak.
  m.peak_anon_mib = std::min(m.peak_anon_mib, m.peak_rss_mib);
  m.peak_file_mib = std::min(m.peak_file_mib, m.peak_rss_mib);
  return m;
}

}  // namespace sq
