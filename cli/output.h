// Small output helpers shared by the subcommands.
#pragma once

#include <functional>
#include <string>

#include "core/atomic_file.h"

namespace sq {

// A progress callback (done, total) printing stage, step, rate and ETA on stderr (core/progress.h);
// empty when progress is off (--quiet).
std::function<void(int, int)> StderrProgress(const std::string& label,
                                             const std::string& unit = "window");

}  // namespace sq
