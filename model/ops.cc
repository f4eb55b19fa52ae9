#include "model/ops.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace sq {

Mat RmsNorm(const Mat& x, const Vec& w, float eps) {
  Mat y(x.rows(), x.cols());
  for (Eigen::Index t = 0; t < x.rows(); ++t) {
    const float ms = x.row(t).squaredNorm() / static_cast<float>(x.cols());
    y.row(t) = x.row(t) * (1.0f / std::sqrt(ms + eps));
    if (w.size()) y.row(t).array() *= w.transpose().array();
  }
  return y;
}

Mat RmsNormRef(const Mat& x, const Vec& w, float eps) {
  Mat y(x.rows(), x.cols());
  for (Eigen::Index t = 0; t < x.rows(); ++t) {
    double ss = 0;
    for (Eigen::Index j = 0; j < x.cols(); ++j) ss += double(x(t, j)) * x(t, j);
    const double inv = 1.0 / std::sqrt(ss / x.cols() + eps);
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      y(t, j) = static_cast<float>(x(t, j) * inv * (w.size() ? w[j] : 1.0f));
    }
  }
  return y;
}

Mat NormGateValues(const Mat& y, const Mat& down, const Mat& up) {
  Mat z = y * down.transpose();                       // [T, r]
  z = z.unaryExpr([](float v) { return Silu(v); });
  Mat g = z * up.transpose();                         // [T, d]
  return g.unaryExpr([](float v) { return Sigmoid(v); });
}

bool LongRopeIsLong(const ModelConfig& c, int seq_len) {
  return c.rope_scaling.longrope && seq_len > c.rope_scaling.original_max_position;
}

std::vector<double> RopeInvFreq(const ModelConfig& c, int seq_len) {
  // Partial rotary (Phi-3): the frequencies span the rotated dims only, as if they were the head.
  const int dim = c.rope_dim(), half = dim / 2;
  std::vector<double> inv(half);
  for (int i = 0; i < half; ++i) inv[i] = std::pow(double(c.rope_theta), -2.0 * i / dim);
  const RopeScaling& s = c.rope_scaling;
  if (s.linear) {
    for (double& f : inv) f /= s.factor;
    return inv;
  }
  if (s.longrope) {
    const std::vector<float>& ext = LongRopeIsLong(c, seq_len) ? s.long_factor : s.short_factor;
    for (int i = 0; i < half; ++i) inv[i] /= ext[i];
    return inv;
  }
  if (!s.enabled) return inv;
  // Llama 3.1 "llama3" scaling: stretch long wavelengths, keep short ones, blend between.
  const double low_wavelen = s.original_max_position / s.low_freq_factor;
  const double high_wavelen = s.original_max_position / s.high_freq_factor;
  for (double& f : inv) {
    const double wavelen = 2 * std::numbers::pi / f;
    if (wavelen > low_wavelen) {
      f /= s.factor;
    } else if (wavelen >= high_wavelen) {
      const double smooth = (s.original_max_position / wavelen - s.low_freq_factor) /
                            (s.high_freq_factor - s.low_freq_factor);
      f = (1 - smooth) * f / s.factor + smooth * f;
    }
  }
  return inv;
}

RopeTable MakeRopeTable(const ModelConfig& c, int T) { return MakeRopeTable(c, T, T); }

RopeTable MakeRopeTable(const ModelConfig& c, int rows, int seq_len) {
  const std::vector<double> inv = RopeInvFreq(c, seq_len);
  const int half = static_cast<int>(inv.size());
  // longrope's attention scaling multiplies cos and sin (HF: cos = emb.cos() * scaling).
  const float scale = c.rope_scaling.longrope ? c.rope_scaling.attention_factor : 1.0f;
  RopeTable t{Mat(rows, half), Mat(rows, half)};
  for (int p = 0; p < rows; ++p) {
    for (int i = 0; i < half; ++i) {
      // HF computes the angle in float32; so do we, so long contexts agree bit for bit-ish.
      const float angle = static_cast<float>(p) * static_cast<float>(inv[i]);
      t.cos(p, i) = std::cos(angle) * scale;
      t.sin(p, i) = std::sin(angle) * scale;
    }
  }
  return t;
}

namespace {
// Index of the two elements of rotary pair i within a head whose first 2*half dims rotate.
inline void PairIndex(RopePairing pairing, int half, int i, int* a, int* b) {
  if (pairing == RopePairing::kHalf) {
    *a = i;
    *b = i + half;
  } else {
    *a = 2 * i;
    *b = 2 * i + 1;
  }
}
}  // namespace

void ApplyRope(Mat& x, int hd, const RopeTable& t, RopePairing pairing) {
  const int n_heads = static_cast<int>(x.cols() / hd), half = static_cast<int>(t.cos.cols());
  // Threads only pay off on large inputs; on small ones their start-up costs more than the work.
#pragma omp parallel for schedule(static) if (x.size() > (1 << 16))
  for (Eigen::Index p = 0; p < x.rows(); ++p) {
    float* row = x.row(p).data();
    const float* cs = t.cos.row(p).data();
    const float* sn = t.sin.row(p).data();
    for (int h = 0; h < n_heads; ++h) {
      float* head = row + h * hd;
      for (int i = 0; i < half; ++i) {
        int a, b;
        PairIndex(pairing, half, i, &a, &b);
        const float x0 = head[a], x1 = head[b];
        head[a] = x0 * cs[i] - x1 * sn[i];
        head[b] = x1 * cs[i] + x0 * sn[i];
      }
    }
  }
}

void ApplyRopeRef(Mat& x, int hd, const RopeTable& t, RopePairing pairing) {
  const int half = static_cast<int>(t.cos.cols());
  for (Eigen::Index p = 0; p < x.rows(); ++p) {
    for (Eigen::Index h = 0; h < x.cols() / hd; ++h) {
      for (int i = 0; i < half; ++i) {
        int a, b;
        PairIndex(pairing, half, i, &a, &b);
        const double x0 = x(p, h * hd + a), x1 = x(p, h * hd + b);
        const double c = t.cos(p, i), s = t.sin(p, i);
        x(p, h * hd + a) = static_cast<float>(x0 * c - x1 * s);
        x(p, h * hd + b) = static_cast<float>(x1 * c + x0 * s);
      }
    }
  }
}

namespace {
// The first key query t attends to: HF's sliding window keeps keys j > t - window.
Eigen::Index FirstKey(Eigen::Index t, int window) {
  return window > 0 ? std::max<Eigen::Index>(0, t - window + 1) : 0;
}
}  // namespace

// Query rows per block of HeadAttention: block [r0, r0 + n) meets only the keys its rows can
// see, [FirstKey(r0), r0 + n), so the products skip the masked upper triangle (and, with a
// sliding window, the keys before it): at 512 tokens 56% of the full products' work.
constexpr Eigen::Index kQueryBlock = 64;

void Softcap(Mat& x, float cap) {
  if (cap > 0) x = x.unaryExpr([cap](float v) { return std::tanh(v / cap) * cap; });
}

void HeadAttention(const Mat& q, const Mat& k, const Mat& v, Mat& out, Mat* probs,
                   AttnShape shape) {
  const Eigen::Index T = q.rows();
  const int window = shape.window;
  const float scale =
      shape.scale > 0 ? shape.scale : 1.0f / std::sqrt(static_cast<float>(q.cols()));
  out.resize(T, v.cols());
  if (probs) probs->setZero(T, T);
  Mat s;  // [n, keys of the block]
  for (Eigen::Index r0 = 0; r0 < T; r0 += kQueryBlock) {
    const Eigen::Index n = std::min(kQueryBlock, T - r0), k0 = FirstKey(r0, window);
    const Eigen::Index width = r0 + n - k0;
    s.noalias() = q.middleRows(r0, n) * k.middleRows(k0, width).transpose();
    s *= scale;
    Softcap(s, shape.softcap);
    for (Eigen::Index i = 0; i < n; ++i) {
      const Eigen::Index t = r0 + i, j0 = FirstKey(t, window) - k0, j1 = t + 1 - k0;
      auto row = s.row(i).segment(j0, j1 - j0);
      const float m = row.maxCoeff();
      row = (row.array() - m).exp();
      row /= row.sum();
      s.row(i).head(j0).setZero();           // sliding window: keys too far back get nothing
      s.row(i).tail(width - j1).setZero();  // causal: future keys get nothing
    }
    out.middleRows(r0, n).noalias() = s * v.middleRows(k0, width);
    if (probs) probs->block(r0, k0, n, width) = s;
  }
}

void HeadAttentionRef(const Mat& q, const Mat& k, const Mat& v, Mat& out, Mat* probs,
                      AttnShape shape) {
  const Eigen::Index T = q.rows(), hd = q.cols();
  const int window = shape.window;
  const double scale = shape.scale > 0 ? shape.scale : 1.0 / std::sqrt(double(hd));
  out = Mat::Zero(T, v.cols());
  Mat p = Mat::Zero(T, T);
  for (Eigen::Index t = 0; t < T; ++t) {
    std::vector<double> score(t + 1, 0.0);
    double m = -INFINITY;
    const Eigen::Index j0 = FirstKey(t, window);
    for (Eigen::Index j = j0; j <= t; ++j) {
      double dot = 0;
      for (Eigen::Index i = 0; i < hd; ++i) dot += double(q(t, i)) * k(j, i);
      score[j] = dot * scale;
      if (shape.softcap > 0) score[j] = std::tanh(score[j] / shape.softcap) * shape.softcap;
      m = std::max(m, score[j]);
    }
    double z = 0;
    for (Eigen::Index j = j0; j <= t; ++j) z += (score[j] = std::exp(score[j] - m));
    for (Eigen::Index j = j0; j <= t; ++j) {
      p(t, j) = static_cast<float>(score[j] / z);
      for (Eigen::Index i = 0; i < v.cols(); ++i) out(t, i) += static_cast<float>(score[j] / z * v(j, i));
    }
  }
  if (probs) *probs = std::move(p);
}

Mat SwiGlu(const Mat& gate, const Mat& up) {
  return gate.binaryExpr(up, [](float g, float u) { return Silu(g) * u; });
}

Mat GeGlu(const Mat& gate, const Mat& up) {
  return gate.binaryExpr(up, [](float g, float u) { return GeluTanh(g) * u; });
}

Mat GatedActivation(FfnActivation act, const Mat& gate, const Mat& up) {
  return act == FfnActivation::kGeluTanh ? GeGlu(gate, up) : SwiGlu(gate, up);
}

Mat SwiGluRef(const Mat& gate, const Mat& up) {
  Mat y(gate.rows(), gate.cols());
  for (Eigen::Index i = 0; i < gate.rows(); ++i) {
    for (Eigen::Index j = 0; j < gate.cols(); ++j) {
      const double g = gate(i, j);
      y(i, j) = static_cast<float>(g / (1.0 + std::exp(-g)) * up(i, j));
    }
  }
  return y;
}

}  // namespace sq
