#include "calib/compare.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>

#include "core/error.h"

namespace sq {

double KlDivergence(const float* p_logits, const float* q_logits, int n) {
  const std::vector<double> lp = LogSoftmax(p_logits, n), lq = LogSoftmax(q_logits, n);
  double kl = 0;
  for (int i = 0; i < n; ++i) kl += std::exp(lp[i]) * (lp[i] - lq[i]);
  return std::max(kl, 0.0);  // rounding can give -1e-17 for identical rows
}

namespace {

int ArgMax(const float* x, int n) { return static_cast<int>(std::max_element(x, x + n) - x); }

// -log softmax(row)[target], computed exactly as EvaluatePerplexity does.
double Nll(const float* row, int V, int target) {
  double mx = -INFINITY;
  for (int i = 0; i < V; ++i) mx = std::max(mx, double(row[i]));
  double z = 0;
  for (int i = 0; i < V; ++i) z += std::exp(double(row[i]) - mx);
  return mx + std::log(z) - double(row[target]);
}

// PplResult from NLL sums, with EvaluatePerplexity's stderr convention.
PplResult MakePpl(double sum, double sum_sq, long n, double seconds, long forward_tokens) {
  Check(n > 0, "EvalQuantized: no tokens were scored");
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

// Forwards to `inner` during the first `n` forward passes only (EvaluatePerplexity runs one
// per window; the first site of a pass is the embeddings' kResidual).
class FirstWindowsObserver : public ForwardObserver {
 public:
  FirstWindowsObserver(ForwardObserver* inner, int n) : inner_(inner), n_(n) {}
  bool Wants(Site site, int layer) const override {
    return site == Site::kResidual ? layer == -1 : (pass_ < n_ && inner_->Wants(site, layer));
  }
  void Observe(const Where& at, const Mat& x) override {
    if (at.site == Site::kResidual && at.layer == -1) {
      ++pass_;
      return;
    }
    if (pass_ < n_) inner_->Observe(at, x);
  }

 private:
  ForwardObserver* inner_;
  int n_;
  int pass_ = -1;  // index of the current forward pass
};

struct SiteLinears {
  Site site;
  std::vector<Role> roles;
};

const Linear* LinearOf(const Model& m, int layer, Role r) {
  if (r == Role::kLmHead) return m.lm_head.get();
  const LayerLinears& L = m.linears[layer];
  switch (r) {
    case Role::kAttnQ: return L.q.get();
    case Role::kAttnK: return L.k.get();
    case Role::kAttnV: return L.v.get();
    case Role::kAttnO: return L.o.get();
    case Role::kFfnGate: return L.gate.get();
    case Role::kFfnUp: return L.up.get();
    case Role::kFfnDown: return L.down.get();
    default: return nullptr;
  }
}

// Feeds every observed linear input of the reference model through the reference and the
// quantized linear and accumulates signal and noise energy.
class SqnrObserver : public ForwardObserver {
 public:
  SqnrObserver(const Model& ref, const Model& q) : ref_(ref), q_(q) {}
  bool Wants(Site site, int layer) const override { return RolesAt(site) != nullptr; }
  void Observe(const Where& at, const Mat& x) override {
    const std::vector<Role>* roles = RolesAt(at.site);
    if (!roles) return;
    const int layer = at.site == Site::kHeadInput ? -1 : at.layer;
    for (Role r : *roles) {
      const Linear* a = LinearOf(ref_, layer, r);
      const Linear* b = LinearOf(q_, layer, r);
      if (a == b) continue;  // the same object: not quantized
      Mat ya, yb;
      a->Apply(x, ya);
      b->Apply(x, yb);
      LinearSqnr& s = acc_[{layer, static_cast<int>(r)}];
      s.layer = layer;
      s.role = r;
      s.signal += ya.cast<double>().squaredNorm();
      s.noise += (ya - yb).cast<double>().squaredNorm();
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
  static const std::vector<Role>* RolesAt(Site site) {
    static const std::vector<Role> kAttn = {Role::kAttnQ, Role::kAttnK, Role::kAttnV},
                                   kO = {Role::kAttnO}, kFfn = {Role::kFfnGate, Role::kFfnUp},
                                   kDown = {Role::kFfnDown}, kHead = {Role::kLmHead};
    switch (site) {
      case Site::kAttnInput: return &kAttn;
      case Site::kOInput: return &kO;
      case Site::kFfnInput: return &kFfn;
      case Site::kDownInput: return &kDown;
      case Site::kHeadInput: return &kHead;
      default: return nullptr;
    }
  }
  const Model& ref_;
  const Model& q_;
  std::map<std::pair<int, int>, LinearSqnr> acc_;  // (layer, role) -> sums; role order within
};

}  // namespace

CompareResult EvalQuantized(const Model& fp, const Model& q, const std::vector<Window>& windows,
                            const CompareOptions& opt) {
  Check(fp.config.vocab == q.config.vocab, "EvalQuantized: the two models' vocabularies differ");
  CompareResult r;
  const Model& ref = opt.sqnr_reference ? *opt.sqnr_reference : fp;
  SqnrObserver sqnr(ref, q);
  std::vector<double> kls;
  long agree = 0;
  double q_sum = 0, q_sum_sq = 0;
  long forward_tokens = 0;
  double q_seconds = 0;
  // The float pass is EvaluatePerplexity's; the quantized model runs inside its callback on the
  // same window, so each model runs once. The quantized NLL uses the same formula.
  auto compare = [&](int w, const Window& win, const Mat& fp_logits) {
    const auto start = std::chrono::steady_clock::now();
    const Mat q_logits = Forward(q, win.tokens);
    q_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    forward_tokens += static_cast<long>(win.tokens.size());
    const int V = static_cast<int>(fp_logits.cols());
    for (int t = win.first_target; t < static_cast<int>(win.tokens.size()); ++t) {
      const float* a = fp_logits.row(t - 1).data();
      const float* b = q_logits.row(t - 1).data();
      const double nll = Nll(b, V, win.tokens[t]);
      Check(std::isfinite(nll), "quantized model: non-finite loss at window " +
                                    std::to_string(w) + " position " + std::to_string(t));
      q_sum += nll;
      q_sum_sq += nll * nll;
      kls.push_back(KlDivergence(a, b, V));
      agree += ArgMax(a, V) == ArgMax(b, V);
    }
  };
  // The float model's SQNR pass rides on its own forward when it is its own reference.
  const bool ride = &ref == &fp && opt.sqnr_windows > 0;
  FirstWindowsObserver first(&sqnr, opt.sqnr_windows);
  r.fp = EvaluatePerplexity(fp, windows, ride ? &first : nullptr, compare, opt.progress);
  if (!ride) {
    for (int w = 0; w < std::min<int>(opt.sqnr_windows, windows.size()); ++w) {
      Forward(ref, windows[w].tokens, &sqnr);
    }
  }
  r.quant = MakePpl(q_sum, q_sum_sq, static_cast<long>(kls.size()), q_seconds, forward_tokens);
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
