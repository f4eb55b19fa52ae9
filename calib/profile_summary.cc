// The terminal summary and the verdict line of a profile (declared in calib/profile_report.h).
#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <map>
#include <string>

#include "calib/profile_report.h"

namespace sq {

namespace {

// Kurtosis above this marks a site as heavy-tailed in the verdict (a Gaussian has 3).
constexpr double kHeavyTailKurtosis = 10;

std::string F(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  return buf;
}

std::string Tok(const ProfileResult& r, int id) {
  auto it = r.token_text.find(id);
  return QuoteToken(it == r.token_text.end() ? "" : it->second);
}

std::string OutlierChannels(const ProfileResult& r, int top) {
  std::string s = F("outlier channels (channel absmax / median channel absmax of its site >= %g): %zu\n",
                    r.thresholds.outlier_ratio, r.outlier_channels.size());
  if (!r.outlier_channels.empty()) s += F("  %-11s %5s %8s %10s %8s\n", "site", "layer", "channel", "absmax", "ratio");
  for (size_t i = 0; i < r.outlier_channels.size() && int(i) < top; ++i) {
    const OutlierChannel& o = r.outlier_channels[i];
    s += F("  %-11s %5d %8d %10.3g %8.1f\n", SiteName(o.site), o.layer, o.channel, o.absmax, o.ratio);
  }
  // The worst site even when nothing is flagged, so the reader sees how far from the bound.
  const SiteProfile* worst = nullptr;
  double worst_ratio = 0;
  for (const SiteProfile& sp : r.sites) {
    const double med = sp.stats.MedianChannelAbsMax();
    if (med > 0 && sp.stats.AbsMax() / med > worst_ratio) worst = &sp, worst_ratio = sp.stats.AbsMax() / med;
  }
  if (worst) {
    s += F("  worst site: %s layer %d, absmax %.3g = %.1fx its median channel absmax, kurtosis %.1f\n",
           SiteName(worst->site), worst->layer, worst->stats.AbsMax(), worst_ratio,
           worst->stats.Kurtosis());
  }
  return s;
}

std::string Massive(const ProfileResult& r, int top) {
  std::string s = F("massive activations (residual |x| > %g and > %gx the median |x| of its token): ",
                    r.thresholds.massive_abs, r.thresholds.massive_rel);
  if (r.massive.empty()) {
    s += "none\n";
  } else {
    s += F("%zu (layer, channel) pairs, first after layer %s\n", r.massive.size(),
           LayerName(r.massive_first_layer).c_str());
    s += F("  %5s %8s %7s %10s %8s  %s\n", "layer", "channel", "count", "max |x|", "position", "token");
    for (size_t i = 0; i < r.massive.size() && int(i) < top; ++i) {
      const MassiveActivation& m = r.massive[i];
      s += F("  %5s %8d %7lld %10.4g %8d  %s\n", LayerName(m.layer).c_str(), m.channel,
             static_cast<long long>(m.count), m.max.value, m.max.position, Tok(r, m.max.token).c_str());
    }
  }
  const ResidualLayer* big = nullptr;
  for (const ResidualLayer& l : r.residual) {
    if (!big || l.absmax > big->absmax) big = &l;
  }
  if (big && big->max.channel >= 0) {
    s += F("  largest residual |x|: %.4g at layer %s, channel %d, position %d %s (%.0fx its token's median |x|)\n",
           big->absmax, LayerName(big->layer).c_str(), big->max.channel, big->max.position,
           Tok(r, big->max.token).c_str(), big->max.row_median > 0 ? big->absmax / big->max.row_median : 0);
  }
  return s;
}

std::string Sinks(const ProfileResult& r, int top) {
  std::vector<const HeadAttentionProfile*> sinks;
  const HeadAttentionProfile* strongest = nullptr;
  for (const HeadAttentionProfile& h : r.heads) {
    if (h.sink) sinks.push_back(&h);
    if (h.queries > 0 && (!strongest || h.first_mass[0] > strongest->first_mass[0])) strongest = &h;
  }
  std::string s = F("attention sinks (mean attention of queries at positions >= %d on one of positions 0..%d >= %g): ",
                    r.thresholds.sink_min_query, r.thresholds.sink_positions - 1, r.thresholds.sink_mass);
  if (!strongest) return s + F("not measured (no window longer than %d tokens)\n", r.thresholds.sink_min_query);
  if (sinks.empty()) {
    s += "none\n";
  } else {
    int noop = 0;
    for (auto* h : sinks) noop += h->noop ? 1 : 0;
    s += F("%zu of %zu heads, %d no-op (||v_sink|| / median ||v|| <= %g)\n", sinks.size(), r.heads.size(), noop,
           r.thresholds.drain_ratio);
    std::stable_sort(sinks.begin(), sinks.end(), [](auto* a, auto* b) {
      return a->first_mass[a->sink_position] > b->first_mass[b->sink_position];
    });
    s += F("  %5s %4s %4s %6s %10s %12s %5s\n", "layer", "head", "pos", "mass", "v ratio", "contribution", "no-op");
    for (size_t i = 0; i < sinks.size() && int(i) < top; ++i) {
      const HeadAttentionProfile& h = *sinks[i];
      const int p = h.sink_position;
      s += F("  %5d %4d %4d %6.3f %10.3f %12.3f %5s\n", h.layer, h.head, p, h.first_mass[p], h.value_ratio[p],
             h.contribution[p], h.noop ? "yes" : "no");
    }
  }
  s += F("  strongest attention on position 0: layer %d head %d, %.3f (value ratio %.2f)\n", strongest->layer,
         strongest->head, strongest->first_mass[0], strongest->value_ratio[0]);
  return s;
}

std::string ResidualSinks(const ProfileResult& r, int top) {
  std::string s = F("residual sinks (H_avg[j] / median H_avg >= %g, H_avg = mean |h[j]| over layers and tokens): ",
                    r.thresholds.residual_sink_factor);
  if (r.residual_sinks.empty()) {
    s += "none";
    if (!r.h_avg.empty() && r.median_h_avg > 0) {
      const auto top_it = std::max_element(r.h_avg.begin(), r.h_avg.end());
      s += F(" (top dim %d at %.1fx the median)", int(top_it - r.h_avg.begin()), *top_it / r.median_h_avg);
    }
    return s + "\n";
  }
  s += F("%zu\n  %5s %10s %8s %14s\n", r.residual_sinks.size(), "dim", "H_avg", "factor", "gamma/median");
  for (size_t i = 0; i < r.residual_sinks.size() && int(i) < top; ++i) {
    const ResidualSink& rs = r.residual_sinks[i];
    s += F("  %5d %10.4g %8.1f %14.4f\n", rs.dim, rs.h_avg, rs.factor, rs.gamma_ratio);
  }
  return s;
}

std::string OutlierTokens(const ProfileResult& r, int top) {
  std::string s = F("outlier tokens (down_proj input row max / median row max of its window > %g): ",
                    r.thresholds.outlier_token_ratio);
  if (r.outlier_tokens.empty()) return s + "none\n";
  s += F("%zu (layer, position, token)\n  %5s %8s %-12s %6s %9s\n", r.outlier_tokens.size(), "layer", "position",
         "token", "count", "max ratio");
  for (size_t i = 0; i < r.outlier_tokens.size() && int(i) < top; ++i) {
    const OutlierToken& o = r.outlier_tokens[i];
    s += F("  %5d %8d %-12s %6lld %9.1f\n", o.layer, o.position, Tok(r, o.token).c_str(),
           static_cast<long long>(o.count), o.max_ratio);
  }
  // Content-dependent outlier tokens spread over positions: count them per token too.
  std::map<int, int64_t> by_token;
  for (const OutlierToken& o : r.outlier_tokens) by_token[o.token] += o.count;
  std::vector<std::pair<int64_t, int>> ranked;
  for (const auto& [id, n] : by_token) ranked.push_back({n, id});
  std::stable_sort(ranked.begin(), ranked.end(), [](auto& a, auto& b) { return a.first > b.first; });
  s += "  most flagged tokens:";
  for (size_t i = 0; i < ranked.size() && i < 8; ++i) {
    s += F(" %s", Tok(r, ranked[i].second).c_str()) + F(" x%.0f", double(ranked[i].first));
  }
  return s + "\n";
}

std::string Gates(const ProfileResult& r) {
  std::string s;
  if (!r.attn_gates.empty()) {
    double sum = 0, closed = 0, lo = 1, hi = 0;
    for (const GateProfile& g : r.attn_gates) {
      sum += g.mean, closed += g.closed, lo = std::min(lo, g.mean), hi = std::max(hi, g.mean);
    }
    const double n = static_cast<double>(r.attn_gates.size());
    s += F("attention output gates: mean %.3f (per head %.3f..%.3f), %.1f%% below %g\n", sum / n, lo, hi,
           100 * closed / n, r.thresholds.gate_closed);
  }
  if (!r.norm_gates.empty()) {
    double sum = 0, closed = 0;
    for (const GateProfile& g : r.norm_gates) sum += g.mean, closed += g.closed;
    const double n = static_cast<double>(r.norm_gates.size());
    s += F("GatedNorm gates: mean %.3f over %zu norms, %.1f%% below %g\n", sum / n, r.norm_gates.size(),
           100 * closed / n, r.thresholds.gate_closed);
  }
  return s;
}

}  // namespace

std::string ProfileVerdict(const ProfileResult& r) {
  std::vector<std::string> issues;
  if (!r.massive.empty()) {
    double mx = 0;
    for (const MassiveActivation& m : r.massive) mx = std::max(mx, std::abs(m.max.value));
    issues.push_back(F("massive activations (up to %.0f from layer %s) will dominate per-token activation scales",
                       mx, LayerName(r.massive_first_layer).c_str()));
  }
  if (!r.outlier_channels.empty()) {
    const OutlierChannel& o = r.outlier_channels[0];
    issues.push_back(F("%zu outlier channels (worst %s layer %d channel %d, %.0fx) need smoothing or rotation",
                       r.outlier_channels.size(), SiteName(o.site), o.layer, o.channel, o.ratio));
  }
  std::vector<std::string> heavy;
  double kmax = 0;
  for (const SiteProfile& sp : r.sites) {
    const double k = sp.stats.Kurtosis();
    if (k > kHeavyTailKurtosis) {
      if (std::find(heavy.begin(), heavy.end(), SiteName(sp.site)) == heavy.end()) heavy.push_back(SiteName(sp.site));
      kmax = std::max(kmax, k);
    }
  }
  if (!heavy.empty()) {
    std::string names;
    for (const std::string& h : heavy) names += (names.empty() ? "" : "/") + h;
    issues.push_back(F("heavy-tailed %s activations (kurtosis up to %.0f > %.0f) lose resolution at 4 bits",
                       names.c_str(), kmax, kHeavyTailKurtosis));
  }
  int sinks = 0, noop = 0;
  for (const HeadAttentionProfile& h : r.heads) sinks += h.sink, noop += h.noop;
  if (sinks > 0) {
    issues.push_back(F("%d sink heads (%d no-op) need the sink token's keys and values kept exact", sinks, noop));
  }
  if (!r.residual_sinks.empty()) {
    issues.push_back(F("%zu residual-sink dims with tiny norm weights make folded weights extreme",
                       r.residual_sinks.size()));
  }
  if (!r.outlier_tokens.empty()) {
    issues.push_back(F("%zu outlier tokens defeat static per-tensor scales", r.outlier_tokens.size()));
  }
  if (issues.empty()) {
    return "W4A4: no outlier channels, massive activations, sinks or outlier tokens above the thresholds; "
           "expect ordinary 4-bit rounding error only";
  }
  std::string v = "W4A4 will struggle with: ";
  for (size_t i = 0; i < issues.size(); ++i) v += (i ? "; " : "") + issues[i];
  return v;
}

std::string ProfileSummary(const ProfileResult& r, int top) {
  std::string s = F("profiled %d windows, %lld tokens; sink statistics from %lld windows longer than %d tokens\n",
                    r.windows, static_cast<long long>(r.tokens), static_cast<long long>(r.sink_windows),
                    r.thresholds.sink_min_query);
  s += OutlierChannels(r, top);
  s += Massive(r, top);
  s += Sinks(r, top);
  s += ResidualSinks(r, top);
  s += OutlierTokens(r, top);
  s += Gates(r);
  s += "verdict: " + ProfileVerdict(r) + "\n";
  return s;
}

}  // namespace sq
