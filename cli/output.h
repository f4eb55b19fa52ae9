// Small output helpers shared by the subcommands.
#pragma once

#include <functional>
#include <string>

#include "core/atomic_file.h"

namespace sq {

// A progress callback printing "label: done/total" on stderr, only when stderr is a terminal.
std::function<void(int, int)> StderrProgress(const std::string& label);

}  // namespace sq
