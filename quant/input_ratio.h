// Does a transform really remove the outliers? At every linear input, what the linear actually
// sees (after its online rotation, if any): max |x| / median |x| over all entries, and the same
// ratio within each token.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "calib/dataset.h"
#include "model/model.h"

namespace sq {

struct InputRatio {
  Site site = Site::kAttnInput;  // kAttnInput (q/k/v), kOInput, kFfnInput (gate/up), kDownInput
  int layer = 0;
  double max_abs = 0;     // over all windows
  double median_abs = 0;  // median over windows of each window's median |x|
  // Per token: max over tokens of max |x_t| / median |x_t| (what a per-token int4 scale sees;
  // a token that is large everywhere does not raise it, one huge channel does).
  double token_ratio = 0;
  double ratio() const { return median_abs > 0 ? max_abs / median_abs : 0; }
  std::string Name() const;  // "L3 down_proj input"
};

// Collects the ratios at every linear input of `m` it observes (online rotations read from m's
// linears at each site, so it also serves a model built one layer at a time).
class InputRatioObserver : public ForwardObserver {
 public:
  explicit InputRatioObserver(const Model& m) : m_(m) {}
  bool Wants(Site site, int layer) const override;
  void Observe(const Where& at, const Mat& x) override;
  std::vector<InputRatio> Results() const;  // sites in forward order
  void CombineRanks() override;

 private:
  struct Acc {
    double max_abs = 0, token_ratio = 0;
    std::vector<float> medians;
  };
  const Model& m_;
  std::map<std::pair<int, int>, Acc> acc_;  // (layer, site)
};

// Runs `m` over the first `max_windows` windows (0: all). Sites in forward order.
std::vector<InputRatio> LinearInputRatios(const Model& m, const std::vector<Window>& windows,
                                          int max_windows);
// The site with the largest ratio (the inputs must not be empty).
const InputRatio& WorstInput(const std::vector<InputRatio>& r);

}  // namespace sq
