// Float vs quantized: how much a quantized model loses, and where.
//   KL: mean over scored tokens of KL(P_float || P_quant) (nats), with its 99th percentile.
//   top-1: fraction of scored tokens where both models' most likely next token agree.
//   SQNR per linear: 10 log10(||y_ref||^2 / ||y_ref - y_quant||^2) in dB, both linears fed the
//   SAME input: the reference model's input of that linear, over the first few windows.
#pragma once

#include <functional>
#include <vector>

#include "calib/dataset.h"
#include "calib/eval.h"
#include "core/model_weights.h"
#include "model/layer_major.h"
#include "model/model.h"
#include "model/proj.h"

namespace sq {

struct LinearSqnr {
  int layer = -1;  // -1: lm_head
  Proj proj = Proj::kQ;
  double sqnr_db = 0;
  double signal = 0, noise = 0;  // sums of squares
};

struct CompareOptions {
  int sqnr_windows = 4;  // windows whose linear inputs feed the SQNR (0: none)
  // The float model whose linear inputs live in the quantized model's basis: after a transform
  // (rotation, smoothing) pass the transformed float model; null = the float model itself.
  const Model* sqnr_reference = nullptr;
  std::function<void(int, int)> progress;  // (layers done, total)
  // A model built one layer at a time (quant/recipe_pipeline.h): its hooks, and streams that
  // ride along on the same layer loop (e.g. input statistics of the transformed model).
  LayerMajorHooks hooks;
  std::vector<LayerMajorStream> extra_streams;
  // The float model's states after its last layer: when empty, this run fills them; when
  // filled (by a run over the same windows), the float stream replays them and runs only its
  // head (LayerMajorStream::final_states), so comparing several quantized models to one float
  // model runs its layers once. Needs sqnr_windows == 0 or an sqnr_reference.
  std::vector<Mat>* fp_final_states = nullptr;
};

struct CompareResult {
  PplResult fp, quant;
  double kld_mean = 0, kld_p99 = 0, kld_max = 0;
  double top1 = 0;  // agreement in [0, 1]
  long tokens = 0;  // scored tokens compared
  std::vector<LinearSqnr> linears;  // quantized linears only (those that differ from the reference)
};

// Runs both models over the same windows.
CompareResult EvalQuantized(const Model& fp, const Model& q, const std::vector<Window>& windows,
                            const CompareOptions& opt = {});

// KL(P || Q) of two logit rows (nats), and each row's argmax.
double KlDivergence(const float* p_logits, const float* q_logits, int n);

}  // namespace sq
