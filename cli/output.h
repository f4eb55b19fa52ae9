// Small output helpers shared by the subcommands.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"

namespace sq {

// A progress callback printing "label: done/total" on stderr, only when stderr is a terminal.
std::function<void(int, int)> StderrProgress(const std::string& label);

// A JSON report as text. JSON has no infinity (nlohmann would write null, which reads as
// "missing"): an overflowed value such as a perplexity past 1e308 is written as the string
// "inf" / "-inf"; a NaN anywhere is an Error naming its key, never a silent null.
std::string ReportJson(const nlohmann::json& j, int indent = 2);

// Prints the mean NLL after a perplexity that overflowed to inf (exp(NLL) > 1e308), so the
// text output still carries the number.
void PrintOverflowedPpl(double ppl, double nll);

}  // namespace sq
