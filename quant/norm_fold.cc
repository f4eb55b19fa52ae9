#include "quant/norm_fold.h"

#include "core/error.h"

namespace sq {

namespace {

// Folds `norm` (and its GatedNorm gate) into the readers; leaves the norm weight at ones.
void FoldOne(ModelWeights& w, TensorView& norm, NormGate& gate,
             std::initializer_list<TensorView*> readers) {
  const Vec g = ToVec(norm);  // [d]
  for (TensorView* r : readers) Replace(w, *r, ScaleColumns(*r, g));
  if (gate.present()) Replace(w, gate.down, ScaleColumns(gate.down, g));
  Replace(w, norm, Mat::Ones(g.size(), 1));
}

}  // namespace

TransformedModel FoldNorms(const TransformedModel& in) {
  Check(in.online.empty(), "fold-norms: the model already has online rotations; fold norms "
                           "before rotating");
  TransformedModel t = in;
  ModelWeights& w = t.weights;
  for (LayerWeights& L : w.layers) {
    FoldOne(w, L.attn_norm, L.attn_norm_gate, {&L.wq, &L.wk, &L.wv});
    FoldOne(w, L.ffn_norm, L.ffn_norm_gate, {&L.w_gate, &L.w_up});
  }
  FoldOne(w, w.final_norm, w.final_norm_gate, {&w.lm_head});
  t.config.tie_embeddings = false;  // lm_head now differs from the embedding
  t.steps.push_back("fold-norms");
  return t;
}

}  // namespace sq
