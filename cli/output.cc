#include "cli/output.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

#include "core/error.h"

namespace sq {

std::function<void(int, int)> StderrProgress(const std::string& label) {
  if (!::isatty(2)) return {};
  return [label](int done, int total) {
    std::fprintf(stderr, "\r%s: %d/%d", label.c_str(), done, total);
    if (done == total) std::fprintf(stderr, "\n");
  };
}

namespace {

void ReplaceNonFinite(nlohmann::json& j, const std::string& path) {
  if (j.is_number_float()) {
    const double v = j.get<double>();
    if (std::isnan(v)) throw Error("report value " + path + " is NaN");
    if (std::isinf(v)) j = v > 0 ? "inf" : "-inf";
  } else if (j.is_object()) {
    for (auto& [k, v] : j.items()) ReplaceNonFinite(v, path + "." + k);
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) ReplaceNonFinite(j[i], path + "[" + std::to_string(i) + "]");
  }
}

}  // namespace

std::string ReportJson(const nlohmann::json& j, int indent) {
  nlohmann::json copy = j;
  ReplaceNonFinite(copy, "");
  return copy.dump(indent) + "\n";
}

void PrintOverflowedPpl(double ppl, double nll) {
  if (!std::isinf(ppl)) return;
  std::printf("PPL overflows a double: mean NLL = %.4f nats/token\n", nll);
}

}  // namespace sq
