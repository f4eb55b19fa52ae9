#include "calib/eval.h"

#include <chrono>
#include <cmath>

#include "core/dist.h"
#include "core/error.h"
#include "model/layer_major.h"

namespace sq {

std::vector<double> LogSoftmax(const float* logits, int n) {
  double m = -INFINITY;
  for (int i = 0; i < n; ++i) m = std::max(m, double(logits[i]));
  double z = 0;
  for (int i = 0; i < n; ++i) z += std::exp(double(logits[i]) - m);
  const double lz = m + std::log(z);
  std::vector<double> out(n);
  for (int i = 0; i < n; ++i) out[i] = double(logits[i]) - lz;
  return out;
}

double TokenNll(const float* row, int n, int target) {
  double mx = -INFINITY;
  for (int i = 0; i < n; ++i) mx = std::max(mx, double(row[i]));
  double z = 0;
  for (int i = 0; i < n; ++i) z += std::exp(double(row[i]) - mx);
  return mx + std::log(z) - double(row[target]);
}

PplResult NllSums::Result(double seconds, long forward_tokens) const {
  Check(n > 0, "no tokens were scored");
  PplResult r;
  r.tokens = n;
  r.nll = sum / n;
  r.ppl = std::exp(r.nll);
  const double var = n > 1 ? std::max(0.0, (sum_sq / n - r.nll * r.nll) * n / (n - 1)) : 0.0;
  r.ppl_stderr = r.ppl * std::sqrt(var / n);
  r.seconds = seconds;
  r.tokens_per_s = seconds > 0 ? forward_tokens / seconds : 0;
  return r;
}

void NllSums::CombineRanks() {
  double sums[] = {sum, sum_sq};
  int64_t count[] = {n};
  dist::SumInRankOrder(sums);
  dist::SumInRankOrder(count);
  sum = sums[0], sum_sq = sums[1], n = count[0];
}

namespace {

// Finds where NaN / Inf first appears in a forward pass (sites arrive in forward order), so a
// non-finite loss can name the layer instead of just the window.
class FirstNonFinite : public ForwardObserver {
 public:
  bool Wants(Site site, int layer) const override { return site != Site::kAttnProbs && !found_; }
  void Observe(const Where& at, const Mat& x) override {
    if (found_ || x.allFinite()) return;
    for (Eigen::Index r = 0; r < x.rows() && !found_; ++r) {
      if (x.row(r).allFinite()) continue;
      found_ = true;
      what_ = std::string(SiteName(at.site)) + " of layer " + std::to_string(at.layer) +
              (at.head >= 0 ? " head " + std::to_string(at.head) : "") + " at position " +
              std::to_string(r);
    }
  }
  const std::string& what() const { return what_; }

 private:
  bool found_ = false;
  std::string what_;
};

// Re-runs `tokens` to say where the first non-finite value appears ("" when none does).
std::string LocateNonFinite(const Model& m, const std::vector<int>& tokens) {
  FirstNonFinite probe;
  Forward(m, tokens, &probe);
  return probe.what().empty() ? "" : "; first NaN/Inf: " + probe.what();
}

}  // namespace

PplResult EvaluatePerplexity(const Model& m, const std::vector<Window>& windows,
                             ForwardObserver* obs, const LogitsCallback& on_logits,
                             const std::function<void(int, int)>& progress,
                             std::vector<Mat>* record_final_states) {
  const auto start = std::chrono::steady_clock::now();
  NllSums sums;
  long forward_tokens = 0;
  for (const Window& w : windows) forward_tokens += static_cast<long>(w.tokens.size());
  LayerMajorStream stream{&m, obs};
  stream.record_final_states = record_final_states;
  auto score = [&](int w, std::span<const Mat> logits_of) {
    const Window& win = windows[w];
    const Mat& logits = logits_of[0];  // [T, V]
    for (int t = win.first_target; t < static_cast<int>(win.tokens.size()); ++t) {
      const double nll = TokenNll(logits.row(t - 1).data(), static_cast<int>(logits.cols()),
                                  win.tokens[t]);
      if (!std::isfinite(nll)) {
        throw Error("non-finite loss at window " + std::to_string(w) + " position " +
                    std::to_string(t) + " (NaN or Inf in the logits" +
                    LocateNonFinite(m, win.tokens) + ")");
      }
      sums.Add(nll);
    }
    if (on_logits) on_logits(w, win, logits);
  };
  const bool split = !obs && !on_logits;
  ForwardLayerMajor({&stream, 1}, TokenSpans(windows), score, [&](int done, int total, long) {
    if (progress) progress(done, total);
  }, {}, split ? WindowSplit::kRankBlocks : WindowSplit::kAll);
  if (split) sums.CombineRanks();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return sums.Result(seconds, forward_tokens);
}

}  // namespace sq
