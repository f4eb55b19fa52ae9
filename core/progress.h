// Progress of long work on stderr: stage, step i/N, rate and ETA. On a terminal one line that
// updates in place; otherwise (a log file, CI) at most one line per second plus the last step,
// so logs stay readable. stdout is never touched: tables and JSON that scripts read are the
// same with or without progress. `sinkquant --quiet` (SetProgressEnabled(false)) silences it.
#pragma once

#include <chrono>
#include <string>

namespace sq {

void SetProgressEnabled(bool on);
bool ProgressEnabled();

class Progress {
 public:
  // `unit` names a step ("layer", "window"); `rate_unit` what Step's `work` counts ("tokens").
  Progress(std::string stage, int total, std::string unit, std::string rate_unit = "tokens");
  // `done` of `total` steps finished; `work` = units of work finished so far (for the rate).
  void Step(int done, double work = 0);

 private:
  std::string stage_, unit_, rate_unit_;
  int total_;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_print_;
};

// "1:05" / "1:02:03" for an ETA or elapsed time.
std::string FormatDuration(double seconds);

}  // namespace sq
