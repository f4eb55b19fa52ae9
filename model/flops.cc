#include "model/flops.h"

namespace sq {

double PrefillFlops(const ModelConfig& c, int T) {
  const double d = c.hidden, f = c.intermediate, t = T;
  const double linears = d * c.q_proj_rows() + 2.0 * d * c.kv_dim() + c.q_dim() * d + 3.0 * d * f;
  const double attention = 2.0 * c.n_heads * c.head_dim * t * (t + 1) / 2;  // QK^T and PV
  const double per_layer = 2.0 * linears * t + 2.0 * attention;
  return c.n_layers * per_layer + 2.0 * t * d * c.vocab;
}

}  // namespace sq
