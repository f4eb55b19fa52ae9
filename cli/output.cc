#include "cli/output.h"

#include <memory>

#include "core/progress.h"

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

}  // namespace sq
