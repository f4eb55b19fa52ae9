#include "quant/transformed_model.h"

#include "core/error.h"

namespace sq {

TransformedModel Untransformed(const Model& m) {
  TransformedModel t;
  t.config = m.config;
  t.weights = m.weights;
  t.online = FindOnlineRotations(m);
  return t;
}

Model BuildModel(const TransformedModel& t) {
  Model m = BuildDenseModel(t.config, t.weights);
  WrapOnlineRotations(m, t.online);
  return m;
}

Mat ScaleColumns(const TensorView& w, const Vec& s) {
  Mat m = ToMat(w);
  Check(m.cols() == s.size(), "ScaleColumns: weight " + w.ShapeString() + " vs " +
                                  std::to_string(s.size()) + " scales");
  return m * s.asDiagonal();
}

Mat ScaleRows(const TensorView& w, const Vec& s) {
  Check(w.shape.size() == 2, "ScaleRows: expected a matrix, got " + w.ShapeString());
  Mat m = ToMat(w);
  Check(m.rows() == s.size(), "ScaleRows: weight " + w.ShapeString() + " vs " +
                                  std::to_string(s.size()) + " scales");
  return s.asDiagonal() * m;
}

void Replace(ModelWeights& w, TensorView& view, Mat m) {
  Check(m.size() == view.numel(), "Replace: " + std::to_string(m.size()) +
                                      " values for a tensor of shape " + view.ShapeString());
  view = w.Own(std::move(m), view.shape);
}

bool IsOnes(const TensorView& v) {
  if (v.empty()) return false;
  const Vec x = ToVec(v);
  return (x.array() == 1.0f).all();
}

}  // namespace sq
