#include "model/observer.h"

namespace sq {

const char* SiteName(Site s) {
  switch (s) {
    case Site::kResidual: return "residual";
    case Site::kAttnInput: return "attn_input";
    case Site::kQuery: return "query";
    case Site::kKey: return "key";
    case Site::kValue: return "value";
    case Site::kAttnProbs: return "attn_probs";
    case Site::kAttnGate: return "attn_gate";
    case Site::kOInput: return "o_input";
    case Site::kFfnInput: return "ffn_input";
    case Site::kDownInput: return "down_input";
    case Site::kNormGate: return "norm_gate";
    case Site::kHeadInput: return "head_input";
    case Site::kLogits: return "logits";
  }
  return "?";
}

}  // namespace sq
