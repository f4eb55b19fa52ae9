#include "cli/output.h"

#include <unistd.h>

#include <cstdio>

namespace sq {

std::function<void(int, int)> StderrProgress(const std::string& label) {
  if (!::isatty(2)) return {};
  return [label](int done, int total) {
    std::fprintf(stderr, "\r%s: %d/%d", label.c_str(), done, total);
    if (done == total) std::fprintf(stderr, "\n");
  };
}

}  // namespace sq
