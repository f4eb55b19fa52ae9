#include "core/model_weights.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/mapped_pages.h"
#include "core/progress.h"

namespace sq {

const char* RoleName(Role r) {
  switch (r) {
    case Role::kEmbed: return "embed";
    case Role::kFinalNorm: return "final_norm";
    case Role::kFinalNormGateDown: return "final_norm_gate_down";
    case Role::kFinalNormGateUp: return "final_norm_gate_up";
    case Role::kLmHead: return "lm_head";
    case Role::kAttnNorm: return "attn_norm";
    case Role::kAttnNormGateDown: return "attn_norm_gate_down";
    case Role::kAttnNormGateUp: return "attn_norm_gate_up";
    case Role::kAttnQ: return "attn_q";
    case Role::kAttnK: return "attn_k";
    case Role::kAttnV: return "attn_v";
    case Role::kAttnQBias: return "attn_q_bias";
    case Role::kAttnKBias: return "attn_k_bias";
    case Role::kAttnVBias: return "attn_v_bias";
    case Role::kAttnQNorm: return "attn_q_norm";
    case Role::kAttnKNorm: return "attn_k_norm";
    case Role::kAttnO: return "attn_o";
    case Role::kFfnNorm: return "ffn_norm";
    case Role::kFfnNormGateDown: return "ffn_norm_gate_down";
    case Role::kFfnNormGateUp: return "ffn_norm_gate_up";
    case Role::kFfnGate: return "ffn_gate";
    case Role::kFfnUp: return "ffn_up";
    case Role::kFfnDown: return "ffn_down";
    case Role::kAttnPostNorm:
      return "attn_post_norm";
    case Role::kFfnPostNorm:
      return "ffn_post_norm";
  }
  return "?";
}

bool IsNormRole(Role r) {
  return r == Role::kAttnNorm || r == Role::kFfnNorm || r == Role::kFinalNorm ||
         r == Role::kAttnQNorm || r == Role::kAttnKNorm || r == Role::kAttnPostNorm ||
         r == Role::kFfnPostNorm;
}

TensorView ModelWeights::Own(Mat m, std::vector<int64_t> shape) {
  auto owned = MakeOwned(std::move(m), std::move(shape));
  TensorView v = owned->View();
  storage.push_back(owned);
  return v;
}

namespace {

// One walk over every slot, shared by the const and mutable ForEachTensor.
template <typename W, typename F>
void Walk(const ModelConfig& c, W& w, F&& fn, bool skip_tied) {
  auto visit = [&](int layer, Role role, auto& view) {
    if (!view.empty()) fn(TensorId{layer, role}, view);
  };
  visit(-1, Role::kEmbed, w.embed);
  for (int l = 0; l < static_cast<int>(w.layers.size()); ++l) {
    auto& L = w.layers[l];
    visit(l, Role::kAttnNorm, L.attn_norm);
    visit(l, Role::kAttnNormGateDown, L.attn_norm_gate.down);
    visit(l, Role::kAttnNormGateUp, L.attn_norm_gate.up);
    visit(l, Role::kAttnQ, L.wq);
    visit(l, Role::kAttnK, L.wk);
    visit(l, Role::kAttnV, L.wv);
    visit(l, Role::kAttnQBias, L.bq);
    visit(l, Role::kAttnKBias, L.bk);
    visit(l, Role::kAttnVBias, L.bv);
    visit(l, Role::kAttnQNorm, L.q_norm);
    visit(l, Role::kAttnKNorm, L.k_norm);
    visit(l, Role::kAttnO, L.wo);
    visit(l, Role::kAttnPostNorm, L.attn_post_norm);
    visit(l, Role::kFfnNorm, L.ffn_norm);
    visit(l, Role::kFfnNormGateDown, L.ffn_norm_gate.down);
    visit(l, Role::kFfnNormGateUp, L.ffn_norm_gate.up);
    visit(l, Role::kFfnGate, L.w_gate);
    visit(l, Role::kFfnUp, L.w_up);
    visit(l, Role::kFfnDown, L.w_down);
    visit(l, Role::kFfnPostNorm, L.ffn_post_norm);
  }
  visit(-1, Role::kFinalNorm, w.final_norm);
  visit(-1, Role::kFinalNormGateDown, w.final_norm_gate.down);
  visit(-1, Role::kFinalNormGateUp, w.final_norm_gate.up);
  if (!(skip_tied && c.tie_embeddings)) visit(-1, Role::kLmHead, w.lm_head);
}

}  // namespace

void ForEachTensor(const ModelConfig& c, const ModelWeights& w,
                   const std::function<void(TensorId, const TensorView&)>& fn, bool skip_tied) {
  Walk(c, w, fn, skip_tied);
}

void ForEachTensor(const ModelConfig& c, ModelWeights& w,
                   const std::function<void(TensorId, TensorView&)>& fn, bool skip_tied) {
  Walk(c, w, fn, skip_tied);
}

std::vector<int64_t> ExpectedShape(const ModelConfig& c, Role r) {
  const int64_t d = c.hidden, f = c.intermediate, hd = c.head_dim, rank = c.gated_norm_rank;
  switch (r) {
    case Role::kEmbed: case Role::kLmHead: return {c.vocab, d};
    case Role::kFinalNorm:
    case Role::kAttnNorm:
    case Role::kFfnNorm:
    case Role::kAttnPostNorm:
    case Role::kFfnPostNorm:
      return {d};
    case Role::kFinalNormGateDown: case Role::kAttnNormGateDown: case Role::kFfnNormGateDown:
      return {rank, d};
    case Role::kFinalNormGateUp: case Role::kAttnNormGateUp: case Role::kFfnNormGateUp:
      return {d, rank};
    case Role::kAttnQ: return {c.q_proj_rows(), d};
    case Role::kAttnK: case Role::kAttnV: return {c.kv_dim(), d};
    case Role::kAttnQBias: return {c.q_proj_rows()};
    case Role::kAttnKBias: case Role::kAttnVBias: return {c.kv_dim()};
    case Role::kAttnQNorm: case Role::kAttnKNorm: return {hd};
    case Role::kAttnO: return {d, c.q_dim()};
    case Role::kFfnGate: case Role::kFfnUp: return {f, d};
    case Role::kFfnDown: return {d, f};
  }
  return {};
}

namespace {

std::string ShapeStr(const std::vector<int64_t>& s) {
  TensorView v;
  v.shape = s;
  return v.ShapeString();
}

}  // namespace

void ValidateWeights(const ModelConfig& c, const ModelWeights& w, const std::string& source,
                     const std::function<std::string(TensorId)>& name_of) {
  Check(static_cast<int>(w.layers.size()) == c.n_layers,
        source + ": expected " + std::to_string(c.n_layers) + " layers, found " +
            std::to_string(w.layers.size()));
  auto require = [&](int layer, Role role, const TensorView& v) {
    Check(!v.empty(), source + ": missing tensor " + name_of({layer, role}));
  };
  require(-1, Role::kEmbed, w.embed);
  require(-1, Role::kFinalNorm, w.final_norm);
  require(-1, Role::kLmHead, w.lm_head);
  for (int l = 0; l < c.n_layers; ++l) {
    const auto& L = w.layers[l];
    for (auto [role, v] : {std::pair{Role::kAttnNorm, &L.attn_norm}, {Role::kAttnQ, &L.wq},
                           {Role::kAttnK, &L.wk}, {Role::kAttnV, &L.wv}, {Role::kAttnO, &L.wo},
                           {Role::kFfnNorm, &L.ffn_norm}, {Role::kFfnGate, &L.w_gate},
                           {Role::kFfnUp, &L.w_up}, {Role::kFfnDown, &L.w_down}}) {
      require(l, role, *v);
    }
    if (c.qkv_bias) {
      require(l, Role::kAttnQBias, L.bq);
      require(l, Role::kAttnKBias, L.bk);
      require(l, Role::kAttnVBias, L.bv);
    }
    if (c.post_norms) {
      require(l, Role::kAttnPostNorm, L.attn_post_norm);
      require(l, Role::kFfnPostNorm, L.ffn_post_norm);
    }
    if (c.qk_norm) {
      require(l, Role::kAttnQNorm, L.q_norm);
      require(l, Role::kAttnKNorm, L.k_norm);
    }
    if (c.gated_norm_rank > 0) {
      require(l, Role::kAttnNormGateDown, L.attn_norm_gate.down);
      require(l, Role::kAttnNormGateUp, L.attn_norm_gate.up);
      require(l, Role::kFfnNormGateDown, L.ffn_norm_gate.down);
      require(l, Role::kFfnNormGateUp, L.ffn_norm_gate.up);
    }
  }
  if (c.gated_norm_rank > 0) {
    require(-1, Role::kFinalNormGateDown, w.final_norm_gate.down);
    require(-1, Role::kFinalNormGateUp, w.final_norm_gate.up);
  }
  ForEachTensor(c, w, [&](TensorId id, const TensorView& v) {
    const std::string name = name_of(id);
    Check(v.dtype == DType::kF32 || v.dtype == DType::kF16 || v.dtype == DType::kBF16,
          source + ": tensor " + name + " has dtype " + DTypeName(v.dtype) +
              ", expected F32, F16 or BF16");
    auto want = ExpectedShape(c, id.role);
    Check(v.shape == want, source + ": tensor " + name + " has shape " + v.ShapeString() +
                               ", config.json implies " + ShapeStr(want));
  }, /*skip_tied=*/false);
}

void CheckFiniteTensors(const ModelConfig& c, const ModelWeights& w, const std::string& why) {
  constexpr int64_t kBlock = 1 << 16;
  std::vector<float> buf(kBlock);
  int tensors = 0, checked = 0;
  double mb = 0;
  ForEachTensor(c, w, [&](TensorId, const TensorView&) { ++tensors; });
  Progress progress("checking weights", tensors, "tensor", "MB");  // an 8B scan takes a while
  progress.Step(0);
  ForEachTensor(c, w, [&](TensorId id, const TensorView& v) {
    const size_t elem = DTypeSize(v.dtype);
    for (int64_t i0 = 0; i0 < v.numel(); i0 += kBlock) {
      const int64_t n = std::min(kBlock, v.numel() - i0);
      ToFloat(v.dtype, v.data + i0 * elem, buf.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        if (std::isfinite(buf[i])) continue;
        const int64_t at = i0 + i, cols = v.shape.size() == 2 ? v.shape[1] : v.numel();
        const std::string where = v.shape.size() == 2 ? std::to_string(at / cols) + ", " +
                                                            std::to_string(at % cols)
                                                      : std::to_string(at);
        throw Error((id.layer < 0 ? std::string() : "layer " + std::to_string(id.layer) + " ") +
                    RoleName(id.role) + " " + v.ShapeString() + " has " +
                    (std::isnan(buf[i]) ? "nan" : buf[i] > 0 ? "inf" : "-inf") + " at [" +
                    where + "]: " + why);
      }
    }
    ReleaseMappedPages(v.data, v.nbytes());  // read once: keep an 8B scan's pages bounded
    mb += v.nbytes() / 1e6;
    progress.Step(++checked, mb);
  });
}

}  // namespace sq
