// KV-cache fake quantization: each token's key (after RoPE) or value of one KV head, in groups
// of `group` channels, asymmetric with a zero point. Range [min(x, 0), max(x, 0)] so the zero
// point is an integer in [0, 2^bits - 1] (a valid ONNX UINT4/UINT8 zero point):
//   lo = min(min_j x_j, 0); hi = max(max_j x_j, 0); s = max(hi - lo, eps) / qmax;
//   z = clamp(RoundHalfEven(-lo / s), 0, qmax); x_j = (clamp(RoundHalfEven(x_j / s) + z, 0, qmax) - z) * s
#pragma once

#include <string>

#include "model/linear.h"

namespace sq {

class GroupKvQuantizer : public KvQuantizer {
 public:
  // bits 2..8; group must divide head_dim (checked in Apply: 0 = the whole head).
  GroupKvQuantizer(int bits, int group);
  void Apply(Mat& x) const override;  // x [T, hd] in place
  int bits() const { return bits_; }
  int group() const { return group_; }
  std::string Describe() const;  // "kv4 g64 asym"

 private:
  int bits_, group_;
};

}  // namespace sq
