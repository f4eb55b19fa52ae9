#include "quant/act_clip.h"

#include "core/error.h"

namespace sq {

std::vector<float> ActClipGrid(float min_ratio) {
  Check(min_ratio > 0 && min_ratio <= 1,
        "--a-clip-min must be in (0, 1], got " + std::to_string(min_ratio));
  std::vector<float> grid;
  for (int i = 0;; ++i) {
    const float r = 1.0f - 0.05f * static_cast<float>(i);
    if (r < min_ratio - 1e-4f || r <= 0) break;
    grid.push_back(r);
  }
  return grid;
}

void AddActClipErrors(const std::vector<Mat>& xs, const Linear& ref, const LinearPtr& quantized,
                      const ActQuantSpec& act, const std::vector<float>& grid,
                      std::vector<double>& errors, const std::vector<Mat>* ref_inputs) {
  Check(errors.size() == grid.size(), "AddActClipErrors: one error slot per grid ratio");
  Check(!ref_inputs || ref_inputs->size() == xs.size(), "AddActClipErrors: one target per input");
  Mat y_ref, y;
  for (size_t w = 0; w < xs.size(); ++w) {
    const Mat& x = xs[w];
    ref.Apply(ref_inputs ? (*ref_inputs)[w] : x, y_ref);
    for (size_t i = 0; i < grid.size(); ++i) {
      ActQuantLinear(quantized, ActQuantSpec{act.bits, grid[i]}).Apply(x, y);
      errors[i] += (y - y_ref).cast<double>().squaredNorm();
    }
  }
}

size_t BestActClip(const std::vector<double>& errors) {
  size_t best = 0;
  for (size_t i = 1; i < errors.size(); ++i) {
    if (errors[i] < errors[best]) best = i;
  }
  return best;
}

}  // namespace sq
