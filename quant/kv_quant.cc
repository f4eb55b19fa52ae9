#include "quant/kv_quant.h"

#include <algorithm>

#include "core/error.h"
#include "core/numeric.h"
#include "quant/quantizer.h"

namespace sq {

GroupKvQuantizer::GroupKvQuantizer(int bits, int group) : bits_(bits), group_(group) {
  Check(bits >= 2 && bits <= 8, "--kv-bits must be 16 (off) or in [2, 8], got " +
                                    std::to_string(bits));
  Check(group >= 0, "--kv-group must be >= 0, got " + std::to_string(group));
}

std::string GroupKvQuantizer::Describe() const {
  return "kv" + std::to_string(bits_) + (group_ ? " g" + std::to_string(group_) : " per-head") +
         " asym";
}

void GroupKvQuantizer::Apply(Mat& x) const {
  const int hd = static_cast<int>(x.cols()), G = group_ == 0 ? hd : group_;
  Check(hd % G == 0, [&] {
    return "KV group " + std::to_string(G) + " does not divide head_dim " + std::to_string(hd);
  });
  const float qmax = static_cast<float>((1 << bits_) - 1);
  for (Eigen::Index t = 0; t < x.rows(); ++t) {
    for (int g0 = 0; g0 < hd; g0 += G) {
      auto v = x.row(t).segment(g0, G).array();
      const float lo = std::min(v.minCoeff(), 0.0f), hi = std::max(v.maxCoeff(), 0.0f);
      const float s = std::max(hi - lo, kActScaleEps) / qmax;
      const float z = std::clamp(RoundHalfEven(-lo / s), 0.0f, qmax);
      for (int j = 0; j < G; ++j) {
        v(j) = (std::clamp(RoundHalfEven(v(j) / s) + z, 0.0f, qmax) - z) * s;
      }
    }
  }
}

}  // namespace sq
