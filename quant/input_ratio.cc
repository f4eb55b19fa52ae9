#include "quant/input_ratio.h"

#include <algorithm>
#include <map>

#include "core/dist.h"
#include "core/error.h"
#include "model/layer_major.h"
#include "model/proj.h"
#include "quant/online_rotation.h"

namespace sq {

bool InputRatioObserver::Wants(Site site, int) const { return IsLayerLinearInput(site); }

void InputRatioObserver::Observe(const Where& at, const Mat& x) {
  if (!Wants(at.site, at.layer)) return;
  const Mat* seen = &x;
  Mat rotated;
  if (const Rotation* r = RotationAtSite(m_, at.site, at.layer)) {
    rotated = x;
    r->Apply(rotated);
    seen = &rotated;
  }
  Acc& acc = acc_[{at.layer, static_cast<int>(at.site)}];
  std::vector<float> a(seen->data(), seen->data() + seen->size());
  for (float& v : a) v = std::abs(v);
  const size_t cols = seen->cols();
  for (size_t t = 0; t < static_cast<size_t>(seen->rows()); ++t) {
    std::vector<float> row(a.begin() + t * cols, a.begin() + (t + 1) * cols);
    std::nth_element(row.begin(), row.begin() + cols / 2, row.end());
    const float mx = *std::max_element(row.begin() + cols / 2, row.end());
    if (row[cols / 2] > 0) acc.token_ratio = std::max<double>(acc.token_ratio, mx / row[cols / 2]);
  }
  std::nth_element(a.begin(), a.begin() + a.size() / 2, a.end());
  acc.medians.push_back(a[a.size() / 2]);
  acc.max_abs = std::max<double>(acc.max_abs, *std::max_element(a.begin() + a.size() / 2, a.end()));
}

// Ranks hold different sites (a rank past the first windows none): each sends (layer, site,
// max, token ratio, its window medians) and the maxima are taken, the medians joined in rank
// order, i.e. in window order as one process collects them.
void InputRatioObserver::CombineRanks() {
  std::vector<double> mine;
  for (const auto& [key, acc] : acc_) {
    mine.insert(mine.end(), {double(key.first), double(key.second), acc.max_abs,
                             acc.token_ratio, double(acc.medians.size())});
    mine.insert(mine.end(), acc.medians.begin(), acc.medians.end());
  }
  const std::vector<double> all = dist::Gather(mine);
  acc_.clear();
  for (size_t i = 0; i < all.size();) {
    Acc& acc = acc_[{static_cast<int>(all[i]), static_cast<int>(all[i + 1])}];
    acc.max_abs = std::max(acc.max_abs, all[i + 2]);
    acc.token_ratio = std::max(acc.token_ratio, all[i + 3]);
    const size_t n = static_cast<size_t>(all[i + 4]);
    acc.medians.insert(acc.medians.end(), all.begin() + i + 5, all.begin() + i + 5 + n);
    i += 5 + n;
  }
}

std::vector<InputRatio> InputRatioObserver::Results() const {
  std::vector<InputRatio> out;
  for (auto [key, acc] : acc_) {
    InputRatio r;
    r.layer = key.first;
    r.site = static_cast<Site>(key.second);
    r.max_abs = acc.max_abs;
    r.token_ratio = acc.token_ratio;
    auto& m = acc.medians;
    std::nth_element(m.begin(), m.begin() + m.size() / 2, m.end());
    r.median_abs = m[m.size() / 2];
    out.push_back(r);
  }
  return out;
}


std::string InputRatio::Name() const {
  const char* what = site == Site::kAttnInput  ? "q/k/v input"
                     : site == Site::kOInput   ? "o_proj input"
                     : site == Site::kFfnInput ? "gate/up input"
                                               : "down_proj input";
  return "L" + std::to_string(layer) + " " + what;
}

std::vector<InputRatio> LinearInputRatios(const Model& m, const std::vector<Window>& windows,
                                          int max_windows) {
  Check(!windows.empty(), "LinearInputRatios: no windows");
  InputRatioObserver obs(m);
  ObserveLayerMajor(m, TokenSpans(windows, max_windows > 0 ? max_windows : -1), obs);
  return obs.Results();
}

const InputRatio& WorstInput(const std::vector<InputRatio>& r) {
  Check(!r.empty(), "WorstInput: no sites");
  return *std::max_element(r.begin(), r.end(), [](const InputRatio& a, const InputRatio& b) {
    return a.ratio() < b.ratio();
  });
}

}  // namespace sq
