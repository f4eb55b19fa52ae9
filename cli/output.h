// Small output helpers shared by the subcommands.
#pragma once

#include <functional>
#include <string>

#include "core/atomic_file.h"

namespace sq {

// A progress callback (done, total) printing stage, step, rate and ETA on stderr (core/progress.h);
// empty when progress is off (--quiet).
// With `tokens` > 0 the rate is in tokens per second, counting a token once it went through
// every step (a layer-major pass over `tokens` tokens: tokens * done / total).
std::function<void(int, int)> StderrProgress(const std::string& label,
                                             const std::string& unit = "window", long tokens = 0);

// The tokens of a set of windows, for StderrProgress's rate.
template <typename Windows>
long TokenCount(const Windows& windows) {
  long n = 0;
  for (const auto& w : windows) n += static_cast<long>(w.tokens.size());
  return n;
}

}  // namespace sq
