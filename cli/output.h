// Small output helpers shared by the subcommands.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

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

// A JSON report as text. JSON has no infinity (nlohmann would write null, which reads as
// "missing"): an overflowed value such as a perplexity past 1e308 is written as the string
// "inf" / "-inf"; a NaN anywhere is an Error naming its key, never a silent null.
std::string ReportJson(const nlohmann::json& j, int indent = 2);

// Prints the mean NLL after a perplexity that overflowed to inf (exp(NLL) > 1e308), so the
// text output still carries the number.
void PrintOverflowedPpl(double ppl, double nll);

}  // namespace sq
