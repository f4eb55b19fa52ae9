#include "cli/output.h"

#include <memory>

#include <cmath>
#include <cstdio>

#include "core/progress.h"
#include "core/error.h"

namespace sq {

std::function<void(int, int)> StderrProgress(const std::string& label, const std::string& unit,
                                             long tokens) {
  if (!ProgressEnabled()) return {};
  struct State {
    std::unique_ptr<Progress> p;
    int last_done = 0, total = 0;
  };
  auto s = std::make_shared<State>();
  return [label, unit, tokens, s](int done, int total) {
    // A new run (compare calls one callback for each recipe's passes) starts a new line.
    if (!s->p || total != s->total || done <= s->last_done) {
      s->p = std::make_unique<Progress>(label, total, unit, tokens > 0 ? "tokens" : unit + "s");
      s->total = total;
    }
    s->last_done = done;
    s->p->Step(done, tokens > 0 ? static_cast<double>(tokens) * done / total : done);
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
