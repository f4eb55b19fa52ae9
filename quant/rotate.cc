#include "quant/rotate.h"

#include <map>
#include <mutex>

#include "core/error.h"

namespace sq {

std::shared_ptr<const Rotation> SharedRotation(int n, uint64_t seed) {
  static std::mutex mu;
  static std::map<std::pair<int, uint64_t>, std::weak_ptr<const Rotation>> alive;
  std::lock_guard<std::mutex> lock(mu);
  std::weak_ptr<const Rotation>& slot = alive[{n, seed}];
  if (auto r = slot.lock()) return r;
  auto r = std::make_shared<const Rotation>(n, seed);
  slot = r;
  return r;
}

namespace {

void RequireFolded(const ModelWeights& w) {
  auto check = [](const TensorView& v, const std::string& what) {
    Check(IsOnes(v), "rotate: " + what + " has a weight that is not all ones; fold norms first "
                     "(recipe step fold-norms)");
  };
  for (size_t l = 0; l < w.layers.size(); ++l) {
    check(w.layers[l].attn_norm, "layer " + std::to_string(l) + " attn_norm");
    check(w.layers[l].ffn_norm, "layer " + std::to_string(l) + " ffn_norm");
  }
  check(w.final_norm, "final_norm");
}

// x Q for every consecutive run of q.size() values of m: its rows, or, when q is one head wide,
// each head's slice of its rows (Q block-diagonal over heads). Rotation::Apply is the fast
// transform: a dense product at 8B shapes was minutes of GEMM per layer.
void ApplyToRuns(const Rotation& q, Mat& m) {
  Check(m.size() % q.size() == 0, "rotate: a tensor of " + std::to_string(m.size()) +
                                      " values is not made of rows of " + std::to_string(q.size()));
  q.Apply(MatMap(m.data(), m.size() / q.size(), q.size()));
}

// Reader W [out, in] whose input becomes x Q: W <- W Q.
void RotateInput(ModelWeights& w, TensorView& v, const Rotation& q) {
  Mat m = ToMat(v);
  ApplyToRuns(q, m);
  Replace(w, v, std::move(m));
}
// Writer W [out, in] whose output must become y Q: W <- Q^T W = (W^T Q)^T.
void RotateOutput(ModelWeights& w, TensorView& v, const Rotation& q) {
  Mat t = ToMat(v).transpose();
  ApplyToRuns(q, t);
  Replace(w, v, Mat(t.transpose()));
}

// v per KV head: v_g H = x (H^T W_g)^T; bias b_g H.
void RotateValueHeads(ModelWeights& w, LayerWeights& L, const Rotation& h) {
  RotateOutput(w, L.wv, h);
  if (!L.bv.empty()) RotateInput(w, L.bv, h);
}

// Values per head, and o_proj reads every head rotated: no online cost.
void FoldValueHeads(ModelWeights& w, LayerWeights& L, const Rotation& h) {
  RotateValueHeads(w, L, h);
  RotateInput(w, L.wo, h);
}

}  // namespace

TransformedModel RotateHadamard(const TransformedModel& in, const RotateOptions& opt) {
  RequireFolded(in.weights);
  Check(in.online.empty(), "rotate: the model is already rotated");
  TransformedModel t = in;
  const ModelConfig& c = t.config;
  ModelWeights& w = t.weights;
  const bool gated_norm = c.gated_norm_rank > 0;
  auto rd = opt.residual_q ? opt.residual_q : SharedRotation(c.hidden, opt.seed);
  Check(rd->size() == c.hidden, "rotate: the residual rotation is " + std::to_string(rd->size()) +
                                    " wide, the model's hidden size " + std::to_string(c.hidden));
  auto rf = SharedRotation(c.intermediate, opt.seed + 1);
  auto rh = SharedRotation(c.head_dim, opt.seed + 2);
  auto ro = SharedRotation(c.q_dim(), opt.seed + 3);
  const Rotation& qd = *rd;
  t.online.layers.resize(c.n_layers);
  std::string what;

  if (opt.residual) {
    if (!gated_norm) {
      RotateInput(w, w.embed, qd);  // E [V, d] <- E Q
      what += " residual " + rd->Describe() + ";";
    } else {
      t.online.head_in = rd;
      what += " online after every GatedNorm " + rd->Describe() + ";";
    }
    RotateInput(w, w.lm_head, qd);
    t.config.tie_embeddings = false;
  }
  for (int l = 0; l < c.n_layers; ++l) {
    LayerWeights& L = w.layers[l];
    LayerOnlineRotations& on = t.online.layers[l];
    if (opt.residual) {
      for (TensorView* r : {&L.wq, &L.wk, &L.wv, &L.w_gate, &L.w_up}) RotateInput(w, *r, qd);
      if (gated_norm) {
        on.attn_in = on.ffn_in = rd;
      } else if (c.post_norms) {
        // Gemma: n(y) * (1 + w) sits between o_proj/down_proj and the add, and Q does not
        // commute with its weight: the outputs stay unrotated and Q runs after the post-norm.
        on.post_out = rd;
      } else {
        RotateOutput(w, L.wo, qd);
        RotateOutput(w, L.w_down, qd);
      }
    }
    if (opt.down) {
      RotateInput(w, L.w_down, *rf);
      on.down_in = rf;
    }
    if (opt.heads && !c.attn_output_gate) {
      FoldValueHeads(w, L, *rh);
    } else if (opt.heads) {
      RotateInput(w, L.wo, *ro);
      on.o_in = ro;
    }
  }
  if (opt.residual && c.post_norms) what += " online after every post-norm;";
  if (opt.down) what += " down_proj input online " + rf->Describe() + ";";
  if (opt.heads) {
    what += c.attn_output_gate ? " o_proj input online (gated attention) " + ro->Describe()
                               : " v/o per head " + rh->Describe();
  }
  t.steps.push_back("rotate(seed=" + std::to_string(opt.seed) + ":" + what + ")");
  return t;
}

TransformedModel RotateKvCache(const TransformedModel& in, uint64_t seed) {
  TransformedModel t = in;
  const ModelConfig& c = t.config;
  auto r = SharedRotation(c.head_dim, seed + 4);
  t.online.layers.resize(c.n_layers);
  for (int l = 0; l < c.n_layers; ++l) {
    Check(!t.online.layers[l].qk, "kv-rotate: queries and keys are already rotated");
    t.online.layers[l].qk = r;
    if (c.attn_output_gate) {
      RotateValueHeads(t.weights, t.weights.layers[l], *r);
      t.online.layers[l].attn_out = r;
    } else {
      FoldValueHeads(t.weights, t.weights.layers[l], *r);
    }
  }
  t.steps.push_back("kv-rotate(seed=" + std::to_string(seed) + ": q/k per head after RoPE online " +
                    r->Describe() +
                    (c.attn_output_gate ? "; values per head in v_proj, undone online before the "
                                          "attention gate)"
                                        : "; values per head folded into v/o)"));
  return t;
}

}  // namespace sq
