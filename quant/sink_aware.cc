#include "quant/sink_aware.h"

#include <algorithm>
#include <cstdio>

#include "core/error.h"
#include "quant/quant_linear.h"

namespace sq {

namespace {

// y = quant(x), except the sink rows, which go through the same weights without activation
// quantization.
class SinkAwareLinear : public Linear {
 public:
  SinkAwareLinear(std::shared_ptr<const ActQuantLinear> quant, const SinkAwareOptions& opt,
                  std::shared_ptr<SinkCounts> counts)
      : quant_(std::move(quant)), float_act_(quant_->inner()), opt_(opt),
        counts_(std::move(counts)) {}
  void Apply(const Mat& x, Mat& y) const override {
    quant_->Apply(x, y);
    int outliers = 0;
    const std::vector<int> rows = SinkRows(x, opt_, &outliers);
    counts_->linear_rows += x.rows();
    counts_->linear_pos0 += static_cast<long>(rows.size()) - outliers;
    counts_->linear_outlier += outliers;
    if (rows.empty()) return;
    Mat xs(rows.size(), x.cols()), ys;
    for (size_t i = 0; i < rows.size(); ++i) xs.row(i) = x.row(rows[i]);
    float_act_->Apply(xs, ys);
    for (size_t i = 0; i < rows.size(); ++i) y.row(rows[i]) = ys.row(i);
  }
  int in_features() const override { return quant_->in_features(); }
  int out_features() const override { return quant_->out_features(); }
  const Linear* wrapped() const override { return quant_.get(); }
  const std::shared_ptr<SinkCounts>& counts() const { return counts_; }

 private:
  std::shared_ptr<const ActQuantLinear> quant_;
  std::shared_ptr<const Linear> float_act_;
  SinkAwareOptions opt_;
  std::shared_ptr<SinkCounts> counts_;
};

// The inner KV quantizer, except the sink rows, which stay float.
class SinkAwareKv : public KvQuantizer {
 public:
  SinkAwareKv(std::shared_ptr<const KvQuantizer> inner, const SinkAwareOptions& opt,
              std::shared_ptr<SinkCounts> counts)
      : inner_(std::move(inner)), opt_(opt), counts_(std::move(counts)) {}
  void Apply(Mat& x) const override {
    int outliers = 0;
    const std::vector<int> rows = SinkRows(x, opt_, &outliers);
    counts_->kv_rows += x.rows();
    counts_->kv_pos0 += static_cast<long>(rows.size()) - outliers;
    counts_->kv_outlier += outliers;
    Mat keep(rows.size(), x.cols());
    for (size_t i = 0; i < rows.size(); ++i) keep.row(i) = x.row(rows[i]);
    inner_->Apply(x);
    for (size_t i = 0; i < rows.size(); ++i) x.row(rows[i]) = keep.row(i);
  }
  const std::shared_ptr<SinkCounts>& counts() const { return counts_; }

 private:
  std::shared_ptr<const KvQuantizer> inner_;
  SinkAwareOptions opt_;
  std::shared_ptr<SinkCounts> counts_;
};

std::shared_ptr<const Linear> Wrap(const std::shared_ptr<const Linear>& lin,
                                   const SinkAwareOptions& opt,
                                   const std::shared_ptr<SinkCounts>& counts) {
  return ReplaceInsideTransforms(lin, [&](const LinearPtr& inner) -> LinearPtr {
    auto q = std::dynamic_pointer_cast<const ActQuantLinear>(inner);
    if (!q || !q->act().enabled()) return inner;  // float activations already
    return std::make_shared<SinkAwareLinear>(q, opt, counts);
  });
}

std::shared_ptr<SinkCounts> CountsOf(const std::shared_ptr<const Linear>& lin) {
  const auto* s = dynamic_cast<const SinkAwareLinear*>(InsideTransforms(lin).get());
  return s ? s->counts() : nullptr;
}

std::string Percent(long part, long whole) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f%%", whole > 0 ? 100.0 * part / whole : 0.0);
  return b;
}

}  // namespace

std::string SinkAwareOptions::Describe() const {
  char b[96];
  std::snprintf(b, sizeof b, "sink-aware(%srows with max/median row max > %g)",
                position0 ? "position 0 + " : "", ratio);
  return b;
}

std::string SinkCounts::Describe() const {
  const long lr = linear_rows, lp = linear_pos0, lo = linear_outlier;
  const long kr = kv_rows, kp = kv_pos0, ko = kv_outlier;
  std::string s = "linear-input rows float: " + Percent(lp + lo, lr) + " (position 0 " +
                  Percent(lp, lr) + ", outlier tokens " + Percent(lo, lr) + " = " +
                  std::to_string(lo) + " of " + std::to_string(lr) + ")";
  if (kr > 0) {
    s += "; KV rows float: " + Percent(kp + ko, kr) + " (outlier tokens " + std::to_string(ko) +
         " of " + std::to_string(kr) + ")";
  }
  return s;
}

std::vector<int> SinkRows(const Mat& x, const SinkAwareOptions& opt, int* outliers) {
  std::vector<int> rows;
  *outliers = 0;
  const Eigen::Index T = x.rows();
  if (T == 0) return rows;
  const Vec row_max = x.cwiseAbs().rowwise().maxCoeff();  // [T]
  std::vector<float> sorted(row_max.data(), row_max.data() + T);
  std::nth_element(sorted.begin(), sorted.begin() + T / 2, sorted.end());
  const float median = sorted[T / 2];
  for (Eigen::Index t = 0; t < T; ++t) {
    const bool pos0 = opt.position0 && t == 0;
    const bool outlier = T > 1 && row_max[t] > opt.ratio * median;
    if (pos0 || outlier) rows.push_back(static_cast<int>(t));
    if (outlier && !pos0) ++*outliers;
  }
  return rows;
}

Model MakeSinkAware(const Model& quantized, const SinkAwareOptions& opt,
                    std::shared_ptr<SinkCounts>* counts) {
  Check(opt.ratio > 1, "sink-aware: the outlier ratio must exceed 1, got " +
                           std::to_string(opt.ratio));
  auto c = counts && *counts ? *counts : std::make_shared<SinkCounts>();
  Model m = quantized;
  for (LayerLinears& L : m.linears) {
    for (auto* lin : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down}) *lin = Wrap(*lin, opt, c);
  }
  m.lm_head = Wrap(m.lm_head, opt, c);
  if (m.kv_quant) m.kv_quant = std::make_shared<SinkAwareKv>(m.kv_quant, opt, c);
  if (counts) *counts = c;
  return m;
}

std::shared_ptr<SinkCounts> FindSinkCounts(const Model& m) {
  if (const auto* kv = dynamic_cast<const SinkAwareKv*>(m.kv_quant.get())) return kv->counts();
  for (const LayerLinears& L : m.linears) {
    for (const auto* lin : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down}) {
      if (auto c = CountsOf(*lin)) return c;
    }
  }
  return CountsOf(m.lm_head);
}

}  // namespace sq
