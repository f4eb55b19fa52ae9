// Sink-aware activations: tokens that are attention sinks or outlier tokens keep float
// activations at every quantized linear and a float KV cache, so int4 rounding never touches
// the tokens every query reads (the sink's key and value) or the rows whose one huge channel
// would crush every other channel of their own per-token scale.
//
// Which rows: position 0 (BOS in every window sinkquant builds) and, as in PrefixQuant, outlier
// tokens: rows whose max |x| exceeds `ratio` (64) times the median over the rows of max |x|.
// The rule is applied to the input each quantized linear (and each KV head) actually sees, in
// every forward pass, so it needs no per-forward state shared between layers; the weights stay
// quantized for those rows, only their activations / KV are float.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"

namespace sq {

struct SinkAwareOptions {
  float ratio = 64.0f;     // PrefixQuant's outlier-token threshold
  bool position0 = true;   // keep row 0 (BOS)
  std::string Describe() const;
};

// Rows counted over all forward passes; shared by every wrapper of one model.
struct SinkCounts {
  std::atomic<long> linear_rows{0}, linear_pos0{0}, linear_outlier{0};
  std::atomic<long> kv_rows{0}, kv_pos0{0}, kv_outlier{0};
  std::string Describe() const;  // "linear inputs: 1.2% of rows float (0.4% pos 0, ...)"
};

// Indices of the rows of x [T, n] kept float under `opt`; `outliers` gets the count of rows
// kept for their ratio (other than row 0).
std::vector<int> SinkRows(const Mat& x, const SinkAwareOptions& opt, int* outliers);

// Wraps every activation-quantizing linear of `quantized` (looking through online transforms)
// and its KV quantizer. `counts` (may be null) receives a counter the wrappers update; when it
// already holds one, that counter is shared (a model wrapped one layer at a time).
Model MakeSinkAware(const Model& quantized, const SinkAwareOptions& opt,
                    std::shared_ptr<SinkCounts>* counts = nullptr);

// The counter of a model made by MakeSinkAware, or null.
std::shared_ptr<SinkCounts> FindSinkCounts(const Model& m);

}  // namespace sq
