// Equivalence-preserving transforms: each takes a model's weights and returns new weights (plus
// the rotations that must stay online) that compute the same function in float, but whose
// linear inputs are easier to quantize. The transforms live in norm_fold.h, smooth.h and
// rotate.h; docs/transforms.md says what folds, what stays online and why.
//
// Usage: TransformedModel t = Untransformed(m); t = FoldNorms(t); t = RotateHadamard(t, opt);
//        Model rotated = BuildModel(t);   // dense float linears, online rotations wrapped
#pragma once

#include <string>
#include <vector>

#include "core/model_config.h"
#include "core/model_weights.h"
#include "model/model.h"
#include "quant/online_rotation.h"

namespace sq {

struct TransformedModel {
  ModelConfig config;
  ModelWeights weights;
  OnlineRotations online;          // rotations the forward pass applies at linear inputs
  std::vector<std::string> steps;  // what was applied, in order, with its settings
};

// The model's config, weights and the online rotations wrapped around its linears (none for a
// loaded model). The result shares `m`'s storage.
TransformedModel Untransformed(const Model& m);

// A runnable float model: DenseLinears over the transformed weights, wrapped by the online
// rotations. Quantizers build their own linears from `t.weights` and wrap them the same way.
Model BuildModel(const TransformedModel& t);

// --- helpers shared by the transforms (weights are read as float and stored owned F32) ---

// w [out, in] with column j multiplied by s[j].
Mat ScaleColumns(const TensorView& w, const Vec& s);
// w [out, in] with row i multiplied by s[i].
Mat ScaleRows(const TensorView& w, const Vec& s);
// Replaces `view` by an owned F32 copy of m (same shape as before).
void Replace(ModelWeights& w, TensorView& view, Mat m);  // pass an rvalue: moved, not copied
// True when every entry of a norm weight is exactly 1 (a weightless norm).
bool IsOnes(const TensorView& v);

}  // namespace sq
