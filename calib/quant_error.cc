#include "calib/quant_error.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>

#include "core/dist.h"
#include "core/error.h"
#include "model/layer_major.h"

namespace sq {

double KlDivergence(const float* p_logits, const float* q_logits, int n) {
  const std::vector<double> lp = LogSoftmax(p_logits, n), lq = LogSoftmax(q_logits, n);
  double kl = 0;
  for (int i = 0; i < n; ++i) kl += std::exp(lp[i]) * (lp[i] - lq[i]);
  return std::max(kl, 0.0);  // rounding can give -1e-17 for identical rows
}

namespace {

int ArgMax(const float* x, int n) { return static_cast<int>(std::max_element(x, x + n) - x); }

// Forwards to `inner` for the first `n` windows only (told by OnWindow).
class FirstWindowsObserver : public ForwardObserver {
 public:
  FirstWindowsObserver(ForwardObserver* inner, int n) : inner_(inner), n_(n) {}
  void OnWindow(int window, std::span<const int> tokens) override {
    window_ = window;
    if (window_ < n_) inner_->OnWindow(window, tokens);
  }
  bool Wants(Site site, int layer) const override {
    return window_ < n_ && inner_->Wants(site, layer);
  }
  void Observe(const Where& at, const Mat& x) override {
    if (window_ < n_) inner_->Observe(at, x);
  }
  void CombineRanks() override { inner_->CombineRanks(); }

 private:
  ForwardObserver* inner_;
  int n_;
  int window_ = 0;
};

// Feeds every observed linear input of the reference model through the reference and the
// quantized linear and accumulates signal and noise energy.
class SqnrObserver : public ForwardObserver {
 public:
  SqnrObserver(const Model& ref, const Model& q) : ref_(ref), q_(q) {}
  bool Wants(Site site, int layer) const override { return !ProjsReading(site).empty(); }
  void Observe(const Where& at, const Mat& x) override {
    const int layer = at.site == Site::kHeadInput ? -1 : at.layer;
    for (Proj p : ProjsReading(at.site)) {
      const Linear* a = LinearAt(ref_, layer, p).get();
      const Linear* b = LinearAt(q_, layer, p).get();
      if (a == b) continue;  // the same object: not quantized
      Mat ya, yb;
      a->Apply(x, ya);
      b->Apply(x, yb);
      LinearSqnr& s = acc_[{layer, static_cast<int>(p)}];
      s.layer = layer;
      s.proj = p;
      s.signal += ya.cast<double>().squaredNorm();
      s.noise += (ya - yb).cast<double>().squaredNorm();
    }
  }
  // The ranks saw different windows (some none, so their maps differ): gather every rank's
  // (layer, projection, signal, noise) and add them in rank order.
  void CombineRanks() override {
    std::vector<double> mine;
    for (const auto& [key, s] : acc_) {
      mine.insert(mine.end(), {double(key.first), double(key.second), s.signal, s.noise});
    }
    const std::vector<double> all = dist::Gather(mine);
    acc_.clear();
    for (size_t i = 0; i + 3 < all.size(); i += 4) {
      const int layer = static_cast<int>(all[i]), proj = static_cast<int>(all[i + 1]);
      LinearSqnr& s = acc_[{layer, proj}];
      s.layer = layer;
      s.proj = static_cast<Proj>(proj);
      s.signal += all[i + 2];
      s.noise += all[i + 3];
    }
  }
  std::vector<LinearSqnr> Results() const {
    std::vector<LinearSqnr> out;
    for (const auto& [key, s] : acc_) out.push_back(s);
    // forward order: layers ascending, lm_head (-1) last
    std::stable_sort(out.begin(), out.end(), [](const LinearSqnr& a, const LinearSqnr& b) {
      const int la = a.layer < 0 ? 1 << 30 : a.layer, lb = b.layer < 0 ? 1 << 30 : b.layer;
      return la < lb;
    });
    for (LinearSqnr& s : out) {
      s.sqnr_db = s.noise > 0 ? 10 * std::log10(s.signal / s.noise)
                              : std::numeric_limits<double>::infinity();
    }
    return out;
  }

 private:
  const Model& ref_;
  const Model& q_;
  std::map<std::pair<int, int>, LinearSqnr> acc_;  // (layer, proj) -> sums; proj order within
};

}  // namespace

CompareResult EvalQuantized(const Model& fp, const Model& q, const std::vector<Window>& windows,
                            const CompareOptions& opt) {
  Check(fp.config.vocab == q.config.vocab, "EvalQuantized: the two models' vocabularies differ");
  const auto start = std::chrono::steady_clock::now();
  CompareResult r;
  const Model& ref = opt.sqnr_reference ? *opt.sqnr_reference : fp;
  SqnrObserver sqnr(ref, q);
  FirstWindowsObserver first(&sqnr, opt.sqnr_windows);
  ForwardObserver* sqnr_obs = opt.sqnr_windows > 0 ? &first : nullptr;
  // Float and quantized streams advance together, layer by layer; the SQNR reference (the
  // transformed float model, when there is one) runs only the windows it observes.
  double fp_seconds = 0, q_seconds = 0;
  std::vector<LayerMajorStream> streams = {{&fp, &ref == &fp ? sqnr_obs : nullptr},
                                           {&q, nullptr}};
  streams[0].seconds = &fp_seconds;
  streams[1].seconds = &q_seconds;
  if (opt.fp_final_states && opt.fp_final_states->empty()) {
    streams[0].record_final_states = opt.fp_final_states;
  } else if (opt.fp_final_states) {
    streams[0].final_states = opt.fp_final_states;
  }
  if (&ref != &fp && sqnr_obs) streams.push_back({&ref, sqnr_obs, opt.sqnr_windows, false});
  streams.insert(streams.end(), opt.extra_streams.begin(), opt.extra_streams.end());

  long forward_tokens = 0;
  for (const Window& w : windows) forward_tokens += static_cast<long>(w.tokens.size());
  NllSums fp_sums, q_sums;
  std::vector<double> kls;
  long agree = 0;
  auto compare = [&](int w, std::span<const Mat> logits) {
    const Window& win = windows[w];
    const Mat &fl = logits[0], &ql = logits[1];
    const int V = static_cast<int>(fl.cols());
    for (int t = win.first_target; t < static_cast<int>(win.tokens.size()); ++t) {
      const float* a = fl.row(t - 1).data();
      const float* b = ql.row(t - 1).data();
      const double fp_nll = TokenNll(a, V, win.tokens[t]), q_nll = TokenNll(b, V, win.tokens[t]);
      Check(std::isfinite(fp_nll), "float model: non-finite loss at window " +
                                       std::to_string(w) + " position " + std::to_string(t));
      Check(std::isfinite(q_nll), "quantized model: non-finite loss at window " +
                                      std::to_string(w) + " position " + std::to_string(t));
      fp_sums.Add(fp_nll);
      q_sums.Add(q_nll);
      kls.push_back(KlDivergence(a, b, V));
      agree += ArgMax(a, V) == ArgMax(b, V);
    }
  };
  // Under mpirun each rank compares its block of windows: the sums are added across ranks and
  // the per-token KL values gathered in file order (the percentiles need them all).
  ForwardLayerMajor(streams, TokenSpans(windows), compare, [&](int done, int total, long) {
    if (opt.progress) opt.progress(done, total);
  }, opt.hooks, WindowSplit::kRankBlocks);
  fp_sums.CombineRanks();
  q_sums.CombineRanks();
  kls = dist::Gather(kls);
  int64_t agreed[] = {agree};
  dist::SumInRankOrder(agreed);
  agree = agreed[0];
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.fp = fp_sums.Result(seconds, forward_tokens);  // wall time of the whole comparison
  r.quant = q_sums.Result(q_seconds, forward_tokens);
  r.tokens = static_cast<long>(kls.size());
  Check(r.tokens > 0, "EvalQuantized: no tokens were scored");
  double sum = 0;
  for (double k : kls) sum += k;
  r.kld_mean = sum / r.tokens;
  r.top1 = static_cast<double>(agree) / r.tokens;
  std::sort(kls.begin(), kls.end());
  // 99th percentile: nearest rank
  const size_t rank = static_cast<size_t>(std::ceil(0.99 * kls.size()));
  r.kld_p99 = kls[std::max<size_t>(rank, 1) - 1];
  r.kld_max = kls.back();
  r.linears = sqnr.Results();
  return r;
}

}  // namespace sq
