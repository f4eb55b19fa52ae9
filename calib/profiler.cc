// Profiler: accumulation (Observe) and detection (Finish). Observe is called from the main
// thread in the engine's fixed order, so every double sum below has a fixed order too.
#include "calib/profiler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "core/dist.h"
#include "core/error.h"
#include "model/layer_major.h"
#include "model/ops.h"
#include "model/proj.h"

namespace sq {

namespace {

// Per (layer, head) attention sums over queries t >= sink_min_query.
struct HeadAcc {
  std::vector<double> first_sum, contrib_sum;  // [K]
  std::vector<int64_t> top_pos;                // position -> queries whose top key it is
  double top_mass_sum = 0, out_norm_sum = 0;
  int64_t queries = 0;
};

// Per (layer, KV head) value norms.
struct KvAcc {
  LogHistogram norms;                  // ||v_t|| over every token
  std::vector<double> first_norm_sum;  // [K] ||v_k|| summed over windows
  std::vector<int64_t> first_count;    // [K]
};

// Per (layer, head) rotary pair magnitudes.
struct PairAcc {
  std::vector<double> absmax, sink_share, other_share;  // [P]
  int64_t sink_n = 0, other_n = 0;
};

struct GateAcc {
  double sum = 0, closed = 0;
  int64_t n = 0;
};

// The index of a layer's linear-input site: `sites` holds them layer by layer in this order.
int SiteSlot(Site s) {
  return static_cast<int>(std::find(kLayerInputSites.begin(), kLayerInputSites.end(), s) -
                          kLayerInputSites.begin());
}

// Magnitude of rotary pair i of row `r` whose first `rot` dims rotate (partial rotary: the
// rest are no pair's).
double PairNorm(const float* r, int i, int rot, RopePairing pairing) {
  const int a = pairing == RopePairing::kHalf ? i : 2 * i;
  const int b = pairing == RopePairing::kHalf ? i + rot / 2 : 2 * i + 1;
  return std::sqrt(double(r[a]) * r[a] + double(r[b]) * r[b]);
}

}  // namespace

struct Profiler::State {
  const Model& m;
  ProfileThresholds th;
  int L, H, Hkv, hd, P, K;
  std::vector<int> tokens;
  int window = -1;
  int64_t total_tokens = 0, sink_windows = 0;

  std::vector<SiteProfile> sites;  // 4 per layer, then the lm_head input
  std::vector<ResidualLayer> residual;
  std::map<std::pair<int, int>, MassiveActivation> massive;
  // Per layer, so the sum over layers is taken in one fixed order whether windows run
  // window-major or layer-major (model/layer_major.h).
  std::vector<std::vector<double>> h_abs_sum;  // [L][d]
  int64_t h_rows = 0;
  int windows_seen = 0;
  std::map<std::tuple<int, int, int>, OutlierToken> outlier_tokens;

  std::vector<HeadAcc> heads;  // [L*H]
  std::vector<KvAcc> kv;       // [L*Hkv]
  std::vector<Mat> values;     // [Hkv] this layer's values, for the head outputs
  std::vector<PairAcc> q_pairs, k_pairs;
  std::vector<GateAcc> attn_gates;                     // [L*H]
  std::map<std::pair<int, int>, GateAcc> norm_gates;  // (layer, which)

  State(const Model& model, const ProfileThresholds& t) : m(model), th(t) {
    const ModelConfig& c = m.config;
    L = c.n_layers, H = c.n_heads, Hkv = c.n_kv_heads, hd = c.head_dim, P = c.rope_dim() / 2;
    K = th.sink_positions;
    for (int l = 0; l < L; ++l) {
      for (Site s : kLayerInputSites) {
        const int ch = s == Site::kOInput ? c.q_dim() : s == Site::kDownInput ? c.intermediate
                                                                              : c.hidden;
        sites.push_back({s, l, ChannelStats(ch)});
      }
    }
    sites.push_back({Site::kHeadInput, L, ChannelStats(c.hidden)});
    for (int l = -1; l < L; ++l) {
      residual.emplace_back();
      residual.back().layer = l;
    }
    h_abs_sum.assign(L, std::vector<double>(c.hidden, 0.0));
    heads.resize(L * H);
    for (HeadAcc& a : heads) a.first_sum = a.contrib_sum = std::vector<double>(K, 0.0);
    kv.resize(L * Hkv);
    for (KvAcc& a : kv) {
      a.first_norm_sum.assign(K, 0.0);
      a.first_count.assign(K, 0);
    }
    values.resize(Hkv);
    PairAcc pa;
    pa.absmax = pa.sink_share = pa.other_share = std::vector<double>(P, 0.0);
    q_pairs.assign(L * H, pa);
    k_pairs.assign(L * Hkv, pa);
    attn_gates.resize(L * H);
  }

  SiteProfile& SiteAt(Site s, int layer) {
    return s == Site::kHeadInput ? sites.back() : sites[kLayerInputSites.size() * layer + SiteSlot(s)];
  }

  void ObserveResidual(int layer, const Mat& x);
  void ObserveDownRows(int layer, const Mat& x);
  void ObservePairs(PairAcc& acc, const Mat& x, bool key);
  void ObserveValues(int layer, int g, const Mat& x);
  void ObserveProbs(int layer, int h, const Mat& p);
  void ObserveGate(GateAcc& acc, const Mat& x, int col0, int cols);

  template <typename D, typename I>
  void ForEachSum(D&& d, I&& i);
  void CombineRanks();
  void CombineSums();
  void CombinePairMaxima();
  void CombineLargest();
  void CombineMaps();

  void DetectMassive(ProfileResult& r) const;
  void DetectSinks(ProfileResult& r) const;
  void DetectResidualSinks(ProfileResult& r) const;
  void CollectRope(ProfileResult& r) const;
  void CollectGates(ProfileResult& r) const;
};

void Profiler::State::ObserveResidual(int layer, const Mat& x) {
  ResidualLayer& R = residual[layer + 1];
  std::vector<float> row_abs(x.cols());
  for (Eigen::Index t = 0; t < x.rows(); ++t) {
    for (Eigen::Index j = 0; j < x.cols(); ++j) row_abs[j] = std::abs(x(t, j));
    for (float a : row_abs) R.abs_hist.Add(a);
    if (layer >= 0) {
      for (Eigen::Index j = 0; j < x.cols(); ++j) h_abs_sum[layer][j] += row_abs[j];
    }
    std::vector<float> sorted = row_abs;
    const size_t mid = sorted.size() / 2;
    std::nth_element(sorted.begin(), sorted.begin() + mid, sorted.end());
    const double row_median = sorted[mid];  // median |x| of this token's hidden state
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      const double a = row_abs[j];
      const ResidualEntry e{x(t, j), int(j), int(t), tokens[t], window, row_median};
      if (a > R.absmax) {
        R.absmax = a;
        R.max = e;
      }
      if (a <= th.massive_abs || a <= th.massive_rel * row_median) continue;
      MassiveActivation& ma = massive[{layer, int(j)}];
      ma.layer = layer;
      ma.channel = int(j);
      if (a > std::abs(ma.max.value)) ma.max = e;
      ++ma.count;
      ++ma.positions[int(t)];
      ++ma.tokens[tokens[t]];
    }
  }
  if (layer >= 0) h_rows += x.rows();
}

// PrefixQuant's outlier tokens: row max |x| against the median row max of the window.
void Profiler::State::ObserveDownRows(int layer, const Mat& x) {
  std::vector<double> row_max(x.rows());
  for (Eigen::Index t = 0; t < x.rows(); ++t) row_max[t] = x.row(t).cwiseAbs().maxCoeff();
  const double median = Median(row_max);
  if (median <= 0) return;
  for (Eigen::Index t = 0; t < x.rows(); ++t) {
    const double ratio = row_max[t] / median;
    if (ratio <= th.outlier_token_ratio) continue;
    auto key = std::make_tuple(layer, int(t), tokens[t]);
    auto [it, fresh] = outlier_tokens.try_emplace(key, OutlierToken{layer, int(t), tokens[t]});
    OutlierToken& o = it->second;
    ++o.count;
    o.max_ratio = std::max(o.max_ratio, ratio);
    o.max_value = std::max(o.max_value, row_max[t]);
  }
}

void Profiler::State::ObservePairs(PairAcc& acc, const Mat& x, bool key) {
  const RopePairing pairing = m.config.rope_pairing;
  std::vector<double> e(P);
  for (Eigen::Index t = 0; t < x.rows(); ++t) {
    double total = 0;
    for (int i = 0; i < P; ++i) {
      const double n = PairNorm(x.row(t).data(), i, 2 * P, pairing);
      acc.absmax[i] = std::max(acc.absmax[i], n);
      e[i] = n * n;
      total += e[i];
    }
    if (!key || total <= 0) continue;
    std::vector<double>& share = t == 0 ? acc.sink_share : acc.other_share;
    for (int i = 0; i < P; ++i) share[i] += e[i] / total;
    ++(t == 0 ? acc.sink_n : acc.other_n);
  }
}

void Profiler::State::ObserveValues(int layer, int g, const Mat& x) {
  KvAcc& acc = kv[layer * Hkv + g];
  for (Eigen::Index t = 0; t < x.rows(); ++t) {
    const double n = x.row(t).cast<double>().norm();
    acc.norms.Add(static_cast<float>(n));
    if (t < K) {
      acc.first_norm_sum[t] += n;
      ++acc.first_count[t];
    }
  }
  values[g] = x;
}

// Attention of head h over queries t >= min_query: mass on the first K keys, the top key, and
// the share of the output o_t = sum_k p[t,k] v_k that the first keys contribute.
void Profiler::State::ObserveProbs(int layer, int h, const Mat& p) {
  const int T = static_cast<int>(p.rows());
  const Mat& v = values[h / (H / Hkv)];
  Check(v.rows() == T, "profiler: attention probabilities arrived before their values");
  HeadAcc& acc = heads[layer * H + h];
  if (acc.top_pos.size() < size_t(T)) acc.top_pos.resize(T, 0);
  std::vector<double> vnorm(std::min(K, T));
  for (size_t k = 0; k < vnorm.size(); ++k) vnorm[k] = v.row(k).cast<double>().norm();
  for (int t = th.sink_min_query; t < T; ++t) {
    const auto row = p.row(t).head(t + 1);
    Eigen::Index top = 0;
    acc.top_mass_sum += row.maxCoeff(&top);
    ++acc.top_pos[top];
    const Eigen::RowVectorXf o = row * v.topRows(t + 1);  // a gemv: fixed summation order
    const double onorm = o.cast<double>().norm();
    acc.out_norm_sum += onorm;
    for (int k = 0; k < std::min(K, t + 1); ++k) {
      acc.first_sum[k] += row[k];
      if (onorm > 0) acc.contrib_sum[k] += row[k] * vnorm[k] / onorm;
    }
    ++acc.queries;
  }
}

void Profiler::State::ObserveGate(GateAcc& acc, const Mat& x, int col0, int cols) {
  for (Eigen::Index t = 0; t < x.rows(); ++t) {
    for (int j = col0; j < col0 + cols; ++j) {
      acc.sum += x(t, j);
      acc.closed += x(t, j) < th.gate_closed ? 1 : 0;
    }
  }
  acc.n += x.rows() * cols;
}

// ---- Several processes: each rank saw its block of windows (core/dist.h) ----

namespace {

// The records `write` appends on every rank, concatenated in rank order.
template <typename Visit>
std::vector<double> GatherRecords(Visit&& write) {
  std::vector<double> mine;
  write(mine);
  return dist::Gather(mine);
}

void PutEntry(std::vector<double>& out, const ResidualEntry& e) {
  out.insert(out.end(), {e.value, double(e.channel), double(e.position), double(e.token),
                         double(e.window), e.row_median});
}

ResidualEntry TakeEntry(const double* p) {
  return {p[0], int(p[1]), int(p[2]), int(p[3]), int(p[4]), p[5]};
}

constexpr size_t kEntry = 6;

}  // namespace

// Calls `d` on every double and `i` on every count that is a sum over windows, in one fixed
// order (the same on every rank, so the packed vectors line up).
template <typename D, typename I>
void Profiler::State::ForEachSum(D&& d, I&& i) {
  i(total_tokens);
  i(sink_windows);
  i(h_rows);
  for (std::vector<double>& layer : h_abs_sum) {
    for (double& v : layer) d(v);
  }
  for (HeadAcc& a : heads) {
    for (double& v : a.first_sum) d(v);
    for (double& v : a.contrib_sum) d(v);
    for (int64_t& v : a.top_pos) i(v);
    d(a.top_mass_sum);
    d(a.out_norm_sum);
    i(a.queries);
  }
  for (KvAcc& a : kv) {
    for (double& v : a.first_norm_sum) d(v);
    for (int64_t& v : a.first_count) i(v);
  }
  for (std::vector<PairAcc>* pairs : {&q_pairs, &k_pairs}) {
    for (PairAcc& a : *pairs) {
      for (double& v : a.sink_share) d(v);
      for (double& v : a.other_share) d(v);
      i(a.sink_n);
      i(a.other_n);
    }
  }
  for (GateAcc& a : attn_gates) {
    d(a.sum);
    d(a.closed);
    i(a.n);
  }
}

void Profiler::State::CombineRanks() {
  // top_pos grows with the longest window a rank saw: pad every rank to the longest of all.
  double longest[] = {heads.empty() ? 0.0 : double(heads[0].top_pos.size())};
  double seen[] = {double(windows_seen)};
  dist::Max(longest);
  dist::Max(seen);
  windows_seen = static_cast<int>(seen[0]);
  for (HeadAcc& a : heads) a.top_pos.resize(static_cast<size_t>(longest[0]), 0);
  CombineSums();
  CombinePairMaxima();
  for (SiteProfile& sp : sites) sp.stats.CombineRanks();
  for (ResidualLayer& r : residual) r.abs_hist.CombineRanks();
  for (KvAcc& k : kv) k.norms.CombineRanks();
  CombineLargest();
  CombineMaps();
}

// One packed reduction for all the sums (thousands of small vectors at 8B sizes).
void Profiler::State::CombineSums() {
  std::vector<double> ds;
  std::vector<int64_t> is;
  ForEachSum([&](double& v) { ds.push_back(v); }, [&](int64_t& v) { is.push_back(v); });
  dist::SumInRankOrder(ds);
  dist::SumInRankOrder(is);
  size_t a = 0, b = 0;
  ForEachSum([&](double& v) { v = ds[a++]; }, [&](int64_t& v) { v = is[b++]; });
}

void Profiler::State::CombinePairMaxima() {
  std::vector<double> maxima;
  for (auto* pairs : {&q_pairs, &k_pairs}) {
    for (PairAcc& p : *pairs) maxima.insert(maxima.end(), p.absmax.begin(), p.absmax.end());
  }
  dist::Max(maxima);
  size_t m = 0;
  for (auto* pairs : {&q_pairs, &k_pairs}) {
    for (PairAcc& p : *pairs) {
      for (double& v : p.absmax) v = maxima[m++];
    }
  }
}

// Each layer's largest residual entry: the first rank's on ties, as one process keeps the
// first window's.
void Profiler::State::CombineLargest() {
  const std::vector<double> all = GatherRecords([&](std::vector<double>& out) {
    for (const ResidualLayer& r : residual) {
      out.push_back(r.absmax);
      PutEntry(out, r.max);
    }
  });
  for (ResidualLayer& r : residual) r.absmax = 0, r.max = {};
  for (size_t at = 0; at < all.size();) {
    for (ResidualLayer& r : residual) {
      if (all[at] > r.absmax) r.absmax = all[at], r.max = TakeEntry(&all[at + 1]);
      at += 1 + kEntry;
    }
  }
}

// Maps keyed by what a rank happened to see (massive activations, outlier tokens, norm gates):
// every rank's records, merged in rank order.
void Profiler::State::CombineMaps() {
  const std::vector<double> all = GatherRecords([&](std::vector<double>& out) {
    for (const auto& [key, ma] : massive) {
      out.insert(out.end(), {0.0, double(ma.layer), double(ma.channel), double(ma.count),
                             double(ma.positions.size()), double(ma.tokens.size())});
      PutEntry(out, ma.max);
      for (const auto& [k, n] : ma.positions) out.insert(out.end(), {double(k), double(n)});
      for (const auto& [k, n] : ma.tokens) out.insert(out.end(), {double(k), double(n)});
    }
    for (const auto& [key, o] : outlier_tokens) {
      out.insert(out.end(), {1.0, double(o.layer), double(o.position), double(o.token),
                             double(o.count), o.max_ratio, o.max_value});
    }
    for (const auto& [key, g] : norm_gates) {
      out.insert(out.end(), {2.0, double(key.first), double(key.second), g.sum, g.closed,
                             double(g.n)});
    }
  });
  massive.clear();
  outlier_tokens.clear();
  norm_gates.clear();
  for (size_t at = 0; at < all.size();) {
    const double* p = &all[at];
    if (p[0] == 0.0) {
      MassiveActivation& ma = massive[{int(p[1]), int(p[2])}];
      ma.layer = int(p[1]), ma.channel = int(p[2]), ma.count += int64_t(p[3]);
      const ResidualEntry e = TakeEntry(p + 6);
      if (std::abs(e.value) > std::abs(ma.max.value)) ma.max = e;
      const size_t n_pos = size_t(p[4]), n_tok = size_t(p[5]);
      const double* kv = p + 6 + kEntry;
      for (size_t j = 0; j < n_pos; ++j) ma.positions[int(kv[2 * j])] += int64_t(kv[2 * j + 1]);
      kv += 2 * n_pos;
      for (size_t j = 0; j < n_tok; ++j) ma.tokens[int(kv[2 * j])] += int64_t(kv[2 * j + 1]);
      at += 6 + kEntry + 2 * (n_pos + n_tok);
    } else if (p[0] == 1.0) {
      const int layer = int(p[1]), pos = int(p[2]), tok = int(p[3]);
      OutlierToken& o =
          outlier_tokens.try_emplace({layer, pos, tok}, OutlierToken{layer, pos, tok}).first->second;
      o.count += int64_t(p[4]);
      o.max_ratio = std::max(o.max_ratio, p[5]);
      o.max_value = std::max(o.max_value, p[6]);
      at += 7;
    } else {
      GateAcc& g = norm_gates[{int(p[1]), int(p[2])}];
      g.sum += p[3], g.closed += p[4], g.n += int64_t(p[5]);
      at += 6;
    }
  }
}

// ---- Detection over the accumulated statistics ----

namespace {

void DetectOutlierChannels(ProfileResult& r) {
  for (const SiteProfile& sp : r.sites) {
    const double median = sp.stats.MedianChannelAbsMax();
    const std::vector<double>& absmax = sp.stats.absmax();
    for (int c = 0; c < sp.stats.channels(); ++c) {
      if (IsOutlierChannel(absmax[c], median, r.thresholds.outlier_ratio)) {
        r.outlier_channels.push_back({sp.site, sp.layer, c, absmax[c], absmax[c] / median});
      }
    }
  }
  std::stable_sort(r.outlier_channels.begin(), r.outlier_channels.end(),
                   [](const OutlierChannel& a, const OutlierChannel& b) { return a.ratio > b.ratio; });
}

void NameTokens(ProfileResult& r, const std::function<std::string(int)>& token_text) {
  auto name = [&](int id) {
    if (id >= 0 && !r.token_text.count(id)) r.token_text[id] = token_text ? token_text(id) : "";
  };
  for (const ResidualLayer& rl : r.residual) name(rl.max.token);
  for (const MassiveActivation& ma : r.massive) {
    name(ma.max.token);
    for (const auto& [id, n] : ma.tokens) name(id);
  }
  for (const OutlierToken& o : r.outlier_tokens) name(o.token);
}

// |gamma[j]| / median |gamma| of one norm weight.
double GammaRatio(const Vec& gamma, int j) {
  std::vector<double> a(gamma.size());
  for (Eigen::Index i = 0; i < gamma.size(); ++i) a[i] = std::abs(gamma[i]);
  const double med = Median(a);
  return med > 0 ? a[j] / med : 0;
}

}  // namespace

void Profiler::State::DetectMassive(ProfileResult& r) const {
  for (const auto& [key, ma] : massive) r.massive.push_back(ma);
  std::stable_sort(r.massive.begin(), r.massive.end(),
                   [](const MassiveActivation& a, const MassiveActivation& b) {
                     if (a.layer != b.layer) return a.layer < b.layer;
                     return std::abs(a.max.value) > std::abs(b.max.value);
                   });
  if (!r.massive.empty()) r.massive_first_layer = r.massive.front().layer;
}

void Profiler::State::DetectSinks(ProfileResult& r) const {
  for (int l = 0; l < L; ++l) {
    for (int h = 0; h < H; ++h) {
      const HeadAcc& acc = heads[l * H + h];
      const int g = h / (H / Hkv);
      const KvAcc& kva = kv[l * Hkv + g];
      HeadAttentionProfile hp;
      hp.layer = l, hp.head = h, hp.kv_head = g, hp.queries = acc.queries;
      hp.first_mass.assign(K, 0.0);
      hp.contribution.assign(K, 0.0);
      hp.value_ratio.assign(K, 0.0);
      const double median_v = kva.norms.Quantile(0.5);
      for (int k = 0; k < K; ++k) {
        if (kva.first_count[k] > 0 && median_v > 0) {
          hp.value_ratio[k] = kva.first_norm_sum[k] / kva.first_count[k] / median_v;
        }
      }
      if (acc.queries > 0) {
        const double q = static_cast<double>(acc.queries);
        for (int k = 0; k < K; ++k) {
          hp.first_mass[k] = acc.first_sum[k] / q;
          hp.contribution[k] = acc.contrib_sum[k] / q;
        }
        hp.top_key_mass = acc.top_mass_sum / q;
        hp.mean_output_norm = acc.out_norm_sum / q;
        hp.output_ratio = median_v > 0 ? hp.mean_output_norm / median_v : 0;
        auto top = std::max_element(acc.top_pos.begin(), acc.top_pos.end());
        hp.top_key_position = static_cast<int>(top - acc.top_pos.begin());
        hp.top_key_share = *top / q;
        auto best = std::max_element(hp.first_mass.begin(), hp.first_mass.end());
        if (*best >= th.sink_mass) {
          hp.sink = true;
          hp.sink_position = static_cast<int>(best - hp.first_mass.begin());
          hp.noop = hp.value_ratio[hp.sink_position] <= th.drain_ratio;
        }
      }
      r.heads.push_back(std::move(hp));
    }
  }
}

void Profiler::State::DetectResidualSinks(ProfileResult& r) const {
  const int d = m.config.hidden;
  r.h_avg.assign(d, 0.0);
  if (h_rows == 0) return;
  for (int j = 0; j < d; ++j) {
    double sum = 0;
    for (const std::vector<double>& layer : h_abs_sum) sum += layer[j];
    r.h_avg[j] = sum / static_cast<double>(h_rows);
  }
  r.median_h_avg = Median(r.h_avg);
  if (r.median_h_avg <= 0) return;
  std::vector<Vec> norms;  // every norm weight: attn and ffn of each layer, then the final one
  for (const LayerWeights& lw : m.weights.layers) {
    norms.push_back(ToVec(lw.attn_norm));
    norms.push_back(ToVec(lw.ffn_norm));
  }
  norms.push_back(ToVec(m.weights.final_norm));
  for (int j = 0; j < d; ++j) {
    const double factor = r.h_avg[j] / r.median_h_avg;
    if (factor < th.residual_sink_factor) continue;
    ResidualSink rs;
    rs.dim = j, rs.h_avg = r.h_avg[j], rs.factor = factor;
    double ratio_sum = 0;
    for (size_t n = 0; n < norms.size(); ++n) {
      ratio_sum += GammaRatio(norms[n], j);
      if (n + 1 == norms.size()) rs.final_norm = norms[n][j];
      else (n % 2 == 0 ? rs.attn_norm : rs.ffn_norm).push_back(norms[n][j]);
    }
    rs.gamma_ratio = ratio_sum / static_cast<double>(norms.size());
    r.residual_sinks.push_back(std::move(rs));
  }
  std::stable_sort(r.residual_sinks.begin(), r.residual_sinks.end(),
                   [](const ResidualSink& a, const ResidualSink& b) { return a.factor > b.factor; });
}

void Profiler::State::CollectRope(ProfileResult& r) const {
  auto make = [&](const PairAcc& acc, int l, int h, bool key) {
    RopeHead rh;
    rh.layer = l, rh.head = h, rh.pair_absmax = acc.absmax;
    rh.rope = m.config.rope(l);
    if (key) {
      rh.sink_key_share = acc.sink_share;
      rh.other_key_share = acc.other_share;
      for (double& v : rh.sink_key_share) v = acc.sink_n ? v / acc.sink_n : 0;
      for (double& v : rh.other_key_share) v = acc.other_n ? v / acc.other_n : 0;
    }
    return rh;
  };
  for (int l = 0; l < L; ++l) {
    for (int h = 0; h < H; ++h) r.rope_queries.push_back(make(q_pairs[l * H + h], l, h, false));
    for (int g = 0; g < Hkv; ++g) r.rope_keys.push_back(make(k_pairs[l * Hkv + g], l, g, true));
  }
}

void Profiler::State::CollectGates(ProfileResult& r) const {
  auto make = [](const GateAcc& a, int l, int i) {
    return GateProfile{l, i, a.n ? a.sum / a.n : 0, a.n ? a.closed / a.n : 0};
  };
  if (m.config.attn_output_gate) {
    for (int l = 0; l < L; ++l) {
      for (int h = 0; h < H; ++h) r.attn_gates.push_back(make(attn_gates[l * H + h], l, h));
    }
  }
  for (const auto& [key, acc] : norm_gates) r.norm_gates.push_back(make(acc, key.first, key.second));
}

Profiler::Profiler(const Model& model, const ProfileThresholds& th)
    : s_(std::make_unique<State>(model, th)) {}
Profiler::~Profiler() = default;

void Profiler::BeginWindow(std::span<const int> tokens) { OnWindow(s_->windows_seen, tokens); }

void Profiler::OnWindow(int window, std::span<const int> tokens) {
  State& s = *s_;
  s.tokens.assign(tokens.begin(), tokens.end());
  s.window = window;
  if (window < s.windows_seen) return;  // layer-major: a window seen before
  s.windows_seen = window + 1;
  s.total_tokens += static_cast<int64_t>(tokens.size());
  if (static_cast<int>(tokens.size()) > s.th.sink_min_query) ++s.sink_windows;
}

void Profiler::Observe(const Where& at, const Mat& x) {
  State& s = *s_;
  Check(s.window >= 0 && x.rows() == Eigen::Index(s.tokens.size()),
        "profiler: Observe without BeginWindow for this window");
  // Statistics of NaN/Inf would be silently meaningless (a max of NaN is NaN or skipped).
  if (!x.allFinite()) {
    throw Error(std::string("NaN or Inf in the ") + SiteName(at.site) + " of layer " +
                std::to_string(at.layer) + (at.head >= 0 ? " head " + std::to_string(at.head) : "") +
                " in window " + std::to_string(s.window) +
                ": refusing to profile (a non-finite weight in the checkpoint?)");
  }
  switch (at.site) {
    case Site::kResidual: s.ObserveResidual(at.layer, x); break;
    case Site::kAttnInput:
    case Site::kOInput:
    case Site::kFfnInput:
    case Site::kHeadInput: s.SiteAt(at.site, at.layer).stats.Add(x); break;
    case Site::kDownInput:
      s.SiteAt(at.site, at.layer).stats.Add(x);
      s.ObserveDownRows(at.layer, x);
      break;
    case Site::kQuery: s.ObservePairs(s.q_pairs[at.layer * s.H + at.head], x, false); break;
    case Site::kKey: s.ObservePairs(s.k_pairs[at.layer * s.Hkv + at.head], x, true); break;
    case Site::kValue: s.ObserveValues(at.layer, at.head, x); break;
    case Site::kAttnProbs: s.ObserveProbs(at.layer, at.head, x); break;
    case Site::kAttnGate:
      for (int h = 0; h < s.H; ++h) s.ObserveGate(s.attn_gates[at.layer * s.H + h], x, h * s.hd, s.hd);
      break;
    case Site::kNormGate:
      s.ObserveGate(s.norm_gates[{at.layer, at.head}], x, 0, static_cast<int>(x.cols()));
      break;
    case Site::kLogits: break;
  }
}

void Profiler::CombineRanks() { s_->CombineRanks(); }

ProfileResult Profiler::Finish(const std::function<std::string(int)>& token_text) {
  State& s = *s_;
  ProfileResult r;
  r.config = s.m.config;
  r.thresholds = s.th;
  r.windows = s.windows_seen;
  r.tokens = s.total_tokens;
  r.sink_windows = s.sink_windows;
  r.inv_freq = RopeInvFreq(s.m.config);
  for (int l = 0; l < s.m.config.n_layers && r.local_inv_freq.empty(); ++l) {
    if (LocalRope(s.m.config, l)) r.local_inv_freq = RopeInvFreq(LayerRopeConfig(s.m.config, l));
  }
  r.sites = s.sites;
  r.residual = s.residual;
  DetectOutlierChannels(r);
  s.DetectMassive(r);
  s.DetectSinks(r);
  s.DetectResidualSinks(r);
  for (const auto& [key, o] : s.outlier_tokens) r.outlier_tokens.push_back(o);
  std::stable_sort(r.outlier_tokens.begin(), r.outlier_tokens.end(),
                   [](const OutlierToken& a, const OutlierToken& b) {
                     return a.max_ratio > b.max_ratio;
                   });
  s.CollectRope(r);
  s.CollectGates(r);
  NameTokens(r, token_text);
  return r;
}

const SiteProfile* ProfileResult::FindSite(Site s, int layer) const {
  for (const SiteProfile& p : sites) {
    if (p.site == s && p.layer == layer) return &p;
  }
  return nullptr;
}

std::vector<std::vector<int>> SelectWindows(const std::vector<Window>& windows, long max_tokens,
                                            uint64_t seed) {
  std::vector<size_t> order(windows.size());
  std::iota(order.begin(), order.end(), size_t(0));
  if (seed != 0) std::shuffle(order.begin(), order.end(), std::mt19937_64(seed));
  std::vector<std::vector<int>> out;
  long scored = 0;
  for (size_t i : order) {
    if (max_tokens > 0 && scored >= max_tokens) break;
    const Window& w = windows[i];
    std::vector<int> tokens = w.tokens;
    if (max_tokens > 0 && w.targets() > max_tokens - scored) {
      tokens.resize(static_cast<size_t>(w.first_target + max_tokens - scored));
    }
    scored += static_cast<long>(tokens.size()) - w.first_target;
    out.push_back(std::move(tokens));
  }
  return out;
}

ProfileResult RunProfile(const Model& model, const std::vector<std::vector<int>>& windows,
                         const ProfileThresholds& th,
                         const std::function<std::string(int)>& token_text,
                         const std::function<void(int, int)>& progress) {
  Check(!windows.empty(), "profile: no token windows to run");
  Profiler prof(model, th);
  const LayerMajorStream stream{&model, &prof};
  std::vector<std::span<const int>> spans(windows.begin(), windows.end());
  ForwardLayerMajor({&stream, 1}, spans, {}, [&](int done, int total, long) {
    if (progress) progress(done, total);
  }, {}, WindowSplit::kRankBlocks);
  return prof.Finish(token_text);
}

}  // namespace sq
