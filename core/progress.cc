#include "core/progress.h"

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>

namespace sq {

namespace {
std::atomic<bool> g_enabled{true};
}  // namespace

void SetProgressEnabled(bool on) { g_enabled = on; }
bool ProgressEnabled() { return g_enabled; }

std::string FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long s = std::lround(seconds), h = s / 3600, m = (s / 60) % 60, sec = s % 60;
  char b[32];
  if (h > 0) {
    std::snprintf(b, sizeof b, "%ld:%02ld:%02ld", h, m, sec);
  } else {
    std::snprintf(b, sizeof b, "%ld:%02ld", m, sec);
  }
  return b;
}

Progress::Progress(std::string stage, int total, std::string unit, std::string rate_unit)
    : stage_(std::move(stage)), unit_(std::move(unit)), rate_unit_(std::move(rate_unit)),
      total_(total), tty_(::isatty(2) != 0), start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

void Progress::Step(int done, double work) {
  if (!g_enabled || total_ <= 0) return;
  const auto now = std::chrono::steady_clock::now();
  const bool last = done >= total_, first = done == 0;
  // A log gets a line a second at most (and the first and last); a terminal redraws up to 10
  // times a second. Step 0 says the stage has begun: its first step can take a minute.
  const double since = std::chrono::duration<double>(now - last_print_).count();
  if (!last && !first && since < (tty_ ? 0.1 : 1.0)) return;
  last_print_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  char rate[64] = "";
  if (work > 0 && elapsed > 0) {
    std::snprintf(rate, sizeof rate, ", %.1f %s/s", work / elapsed, rate_unit_.c_str());
  }
  const std::string when = first ? "started"
                           : last ? "took " + FormatDuration(elapsed)
                                  : "ETA " + FormatDuration(elapsed * (total_ - done) / done);
  std::fprintf(stderr, "%s%s: %s %d/%d (%3.0f%%)%s, %s%s", tty_ ? "\r" : "", stage_.c_str(),
               unit_.c_str(), done, total_, 100.0 * done / total_, rate, when.c_str(),
               tty_ && !last ? "\033[K" : "\n");
  std::fflush(stderr);
}

}  // namespace sq
