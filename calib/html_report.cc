#include "calib/html_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "calib/svg_chart.h"

namespace sq {

namespace {

using svg::Escape;

constexpr const char* kStyle =
    "body{font-family:sans-serif;margin:24px;max-width:1400px;color:#222}"
    "h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ccc}"
    "table{border-collapse:collapse;font-size:12px;margin:8px 0}"
    "td,th{border:1px solid #ddd;padding:2px 8px;text-align:right}th{background:#f4f4f4}"
    "td.l,th.l,table.meta td{text-align:left}.verdict{font-weight:bold;padding:8px;background:#fff4e0}"
    ".none{color:#2a7a2a;font-weight:bold}.charts svg{margin:4px;vertical-align:top}"
    "pre{background:#f8f8f8;padding:8px;font-size:11px;overflow-x:auto}";

std::string F(const char* fmt, double v) {
  char b[64];
  std::snprintf(b, sizeof(b), fmt, v);
  return b;
}
std::string G(double v) { return F("%.4g", v); }

constexpr size_t kRows = 30;  // rows per detection table; profile.json has them all

std::string More(size_t n) {
  return n > kRows ? "<p>... and " + std::to_string(n - kRows) + " more in profile.json.</p>" : "";
}

svg::Series Line(const std::string& label, const std::string& color, bool dashed = false) {
  svg::Series s;
  s.label = label, s.color = color, s.dashed = dashed;
  return s;
}

svg::Grid Titled(const std::string& title) {
  svg::Grid g;
  g.title = title;
  return g;
}

std::string Row(const std::vector<std::string>& cells, bool header = false) {
  std::string o = "<tr>";
  for (size_t i = 0; i < cells.size(); ++i) {
    const char* tag = header ? "th" : "td";
    o += std::string("<") + tag + (i == 0 ? " class='l'" : "") + ">" + Escape(cells[i]) + "</" +
         tag + ">";
  }
  return o + "</tr>";
}

std::string Tok(const ProfileResult& r, int id) {
  auto it = r.token_text.find(id);
  return QuoteToken(it == r.token_text.end() ? "" : it->second);
}

std::string Header(const ProfileResult& r, const ProfileMeta& m) {
  const ModelConfig& c = r.config;
  std::string o = "<h1>sinkquant profile</h1><table class='meta'>";
  o += Row({"model", m.model_path + "  (" + c.architecture + ", d " + std::to_string(c.hidden) +
                         ", " + std::to_string(c.n_layers) + " layers, " +
                         std::to_string(c.n_heads) + "/" + std::to_string(c.n_kv_heads) + " heads)"});
  o += Row({"tokenizer", m.tokenizer_path});
  o += Row({"data", m.data_path + "  sha256 " + m.data_sha256});
  o += Row({"windows", std::to_string(r.windows) + " (" + m.window_mode + ", ctx " +
                           std::to_string(m.ctx) + "), " + std::to_string(r.tokens) + " tokens"});
  const ProfileThresholds& t = r.thresholds;
  o += Row({"thresholds", "outlier channel ratio " + G(t.outlier_ratio) + "; massive |x| > " +
                              G(t.massive_abs) + " and > " + G(t.massive_rel) +
                              "x token median; sink mass " + G(t.sink_mass) + " (queries >= " +
                              std::to_string(t.sink_min_query) + "); drain " + G(t.drain_ratio) +
                              "; residual sink factor " + G(t.residual_sink_factor) +
                              "; outlier token ratio " + G(t.outlier_token_ratio)});
  o += "</table><p class='verdict'>" + Escape(ProfileVerdict(r)) + "</p>";
  return o;
}

// Per-layer max and median |x| for the residual stream and each linear input.
std::string LayerCharts(const ProfileResult& r) {
  std::string o = "<h2>Activation magnitude per layer</h2><div class='charts'>";
  svg::Axes ax;
  ax.log_y = true, ax.x_label = "layer", ax.y_label = "|x|";
  {
    svg::Series mx = Line("max", "#c0392b"), md = Line("median", "#2c7bb6", true);
    for (const ResidualLayer& l : r.residual) {
      mx.y.push_back(l.absmax);
      md.y.push_back(l.abs_hist.Quantile(0.5));
      ax.x_ticks.push_back(LayerName(l.layer));
    }
    ax.title = "residual stream (after each block)";
    ax.hlines = {{r.thresholds.massive_abs, "massive bound"}};
    o += svg::LineChart(ax, {mx, md});
  }
  ax.hlines.clear();
  for (Site s : {Site::kAttnInput, Site::kOInput, Site::kFfnInput, Site::kDownInput}) {
    svg::Series mx = Line("max", "#c0392b"), md = Line("median", "#2c7bb6", true),
                mc = Line("median channel absmax", "#7b3294", true);
    ax.x_ticks.clear();
    for (int l = 0; l < r.config.n_layers; ++l) {
      const ChannelStats& st = r.FindSite(s, l)->stats;
      mx.y.push_back(st.AbsMax());
      md.y.push_back(st.MedianAbs());
      mc.y.push_back(st.MedianChannelAbsMax());
      ax.x_ticks.push_back(std::to_string(l));
    }
    ax.title = std::string(SiteName(s)) + " (linear input)";
    o += svg::LineChart(ax, {mx, md, mc});
  }
  return o + "</div>";
}

// Channel absmax of the site with the largest absmax / median channel absmax.
std::string WorstSite(const ProfileResult& r) {
  const SiteProfile* worst = nullptr;
  double best = -1;
  for (const SiteProfile& sp : r.sites) {
    const double med = sp.stats.MedianChannelAbsMax();
    const double ratio = med > 0 ? sp.stats.AbsMax() / med : 0;
    if (ratio > best) best = ratio, worst = &sp;
  }
  if (!worst) return "";
  const double med = worst->stats.MedianChannelAbsMax();
  svg::Axes ax;
  ax.width = 900, ax.height = 260, ax.log_y = true;
  ax.title = std::string("channel absmax, ") + SiteName(worst->site) + " layer " +
             std::to_string(worst->layer) + " (the worst site: max/median " + F("%.1f", best) + ")";
  ax.x_label = "channel", ax.y_label = "absmax";
  for (int c = 0; c < worst->stats.channels(); ++c) ax.x_ticks.push_back(std::to_string(c));
  ax.hlines = {{med, "median"}, {med * r.thresholds.outlier_ratio, "outlier threshold"}};
  return "<h2>Channels of the worst linear input</h2>" +
         svg::StemChart(ax, worst->stats.absmax(), "#c0392b");
}

std::string SinkSection(const ProfileResult& r) {
  const ModelConfig& c = r.config;
  std::string o = "<h2>Attention on the first position</h2>";
  if (r.sink_windows == 0) {
    return o + "<p>Not measured: no window was longer than " +
           std::to_string(r.thresholds.sink_min_query) + " tokens.</p>";
  }
  svg::Grid mass = Titled("mean attention of queries at positions >= " +
                     std::to_string(r.thresholds.sink_min_query) + " on position 0");
  svg::Grid drain = Titled("value ratio ||v_0|| / median ||v|| (drain when small)");
  drain.color = "#2c7bb6", drain.hi = 2;
  for (int l = 0; l < c.n_layers; ++l) {
    mass.row_labels.push_back("layer " + std::to_string(l));
    drain.row_labels.push_back("layer " + std::to_string(l));
    mass.values.emplace_back();
    drain.values.emplace_back();
    for (int h = 0; h < c.n_heads; ++h) {
      const HeadAttentionProfile& hp = r.heads[l * c.n_heads + h];
      mass.values.back().push_back(hp.first_mass[0]);
      drain.values.back().push_back(hp.value_ratio[0]);
    }
  }
  for (int h = 0; h < c.n_heads; ++h) {
    mass.col_labels.push_back("h" + std::to_string(h));
    drain.col_labels.push_back("h" + std::to_string(h));
  }
  if (c.n_heads > 24) mass.cell = drain.cell = 14;
  o += "<div class='charts'>" + svg::Heatmap(mass) + svg::Heatmap(drain) + "</div>";
  std::string rows;
  for (const HeadAttentionProfile& h : r.heads) {
    if (!h.sink) continue;
    const int p = h.sink_position;
    rows += Row({std::to_string(h.layer), std::to_string(h.head), std::to_string(p),
                 F("%.3f", h.first_mass[p]), F("%.3f", h.value_ratio[p]),
                 F("%.3f", h.contribution[p]), F("%.3f", h.output_ratio), h.noop ? "yes" : "no"});
  }
  if (rows.empty()) {
    double best = 0;
    for (const HeadAttentionProfile& h : r.heads) {
      for (double m : h.first_mass) best = std::max(best, m);
    }
    return o + "<p class='none'>No sink heads: no head puts " + G(r.thresholds.sink_mass) +
           " of its attention on one of the first " + std::to_string(r.thresholds.sink_positions) +
           " positions (the largest is " + F("%.3f", best) + ").</p>";
  }
  return o + "<table>" +
         Row({"layer", "head", "position", "mass", "value ratio", "contribution", "output ratio",
              "no-op"}, true) + rows + "</table>";
}

std::string ResidualSinkSection(const ProfileResult& r) {
  std::string o = "<h2>Residual stream: H_avg = mean |h[j]| over layers and tokens</h2>";
  std::vector<double> sorted = r.h_avg;
  std::sort(sorted.begin(), sorted.end(), std::greater<>());
  svg::Axes ax;
  ax.width = 900, ax.height = 220, ax.log_y = true;
  ax.title = "H_avg sorted descending (a residual sink stands above the stripe)";
  ax.x_label = "rank", ax.y_label = "H_avg";
  for (size_t i = 0; i < sorted.size(); ++i) ax.x_ticks.push_back(std::to_string(i));
  ax.hlines = {{r.median_h_avg, "median"},
               {r.median_h_avg * r.thresholds.residual_sink_factor, "residual sink threshold"}};
  o += svg::StemChart(ax, sorted, "#7b3294");
  if (r.residual_sinks.empty()) {
    return o + "<p class='none'>No residual sinks above " + G(r.thresholds.residual_sink_factor) +
           "x the median H_avg.</p>";
  }
  o += "<table>" + Row({"dim", "H_avg", "factor", "gamma / median gamma", "final norm gamma"}, true);
  for (const ResidualSink& s : r.residual_sinks) {
    o += Row({std::to_string(s.dim), G(s.h_avg), F("%.1f", s.factor), G(s.gamma_ratio),
              G(s.final_norm)});
  }
  return o + "</table>";
}

std::string MassiveSection(const ProfileResult& r) {
  std::string o = "<h2>Massive activations</h2>";
  if (r.massive.empty()) {
    return o + "<p class='none'>None: no residual entry above " + G(r.thresholds.massive_abs) +
           " and " + G(r.thresholds.massive_rel) + "x its token's median |x|.</p>";
  }
  o += "<p>First after layer " + LayerName(r.massive_first_layer) + ".</p><table>" +
       Row({"layer", "channel", "count", "max x", "position", "token", "x / token median"}, true);
  for (size_t i = 0; i < r.massive.size() && i < kRows; ++i) {
    const MassiveActivation& m = r.massive[i];
    o += Row({LayerName(m.layer), std::to_string(m.channel), std::to_string(m.count),
              G(m.max.value), std::to_string(m.max.position), Tok(r, m.max.token),
              F("%.0f", m.max.row_median > 0 ? std::abs(m.max.value) / m.max.row_median : 0)});
  }
  return o + "</table>" + More(r.massive.size());
}

std::string OutlierTables(const ProfileResult& r) {
  std::string o = "<h2>Outlier channels and outlier tokens</h2>";
  if (r.outlier_channels.empty()) {
    o += "<p class='none'>No channel above " + G(r.thresholds.outlier_ratio) +
         "x its site's median channel absmax.</p>";
  } else {
    o += "<table>" + Row({"site", "layer", "channel", "absmax", "ratio"}, true);
    for (size_t i = 0; i < r.outlier_channels.size() && i < kRows; ++i) {
      const OutlierChannel& c = r.outlier_channels[i];
      o += Row({SiteName(c.site), std::to_string(c.layer), std::to_string(c.channel), G(c.absmax),
                F("%.1f", c.ratio)});
    }
    o += "</table>" + More(r.outlier_channels.size());
  }
  if (r.outlier_tokens.empty()) {
    o += "<p class='none'>No outlier token (down_proj input row max above " +
         G(r.thresholds.outlier_token_ratio) + "x the median row max of its window).</p>";
  } else {
    o += "<table>" + Row({"layer", "position", "token", "windows", "max ratio", "max |x|"}, true);
    for (size_t i = 0; i < r.outlier_tokens.size() && i < kRows; ++i) {
      const OutlierToken& t = r.outlier_tokens[i];
      o += Row({std::to_string(t.layer), std::to_string(t.position), Tok(r, t.token),
                std::to_string(t.count), F("%.1f", t.max_ratio), G(t.max_value)});
    }
    o += "</table>" + More(r.outlier_tokens.size());
  }
  return o;
}

std::string SiteTable(const ProfileResult& r) {
  std::string o = "<h2>Linear inputs</h2><table>" +
                  Row({"site", "layer", "absmax", "median |x|", "median channel absmax",
                       "absmax / median", "kurtosis"}, true);
  for (const SiteProfile& sp : r.sites) {
    const ChannelStats& s = sp.stats;
    const double med = s.MedianChannelAbsMax();
    o += Row({SiteName(sp.site), std::to_string(sp.layer), G(s.AbsMax()), G(s.MedianAbs()),
              G(med), F("%.1f", med > 0 ? s.AbsMax() / med : 0), F("%.1f", s.Kurtosis())});
  }
  return o + "</table>";
}

std::string RopeSection(const ProfileResult& r) {
  const ModelConfig& c = r.config;
  svg::Grid g = Titled("share of the position-0 key's energy per rotary pair (left: high frequency)");
  g.color = "#1a9641", g.cell = c.head_dim / 2 > 32 ? 10 : 18;
  double hi = 0;
  for (const RopeHead& k : r.rope_keys) {
    g.row_labels.push_back("L" + std::to_string(k.layer) + " kv" + std::to_string(k.head) +
                           (k.rope ? "" : " NoPE"));
    g.values.push_back(k.sink_key_share);
    for (double v : k.sink_key_share) hi = std::max(hi, v);
  }
  for (size_t i = 0; i < r.inv_freq.size(); ++i) g.col_labels.push_back(std::to_string(i));
  g.hi = hi > 0 ? hi : 1;
  return "<h2>RoPE bands</h2><p>Pair i rotates by " + Escape("theta_i = ") +
         "position x inv_freq[i]; high pair indices rotate least (inv_freq " +
         G(r.inv_freq.empty() ? 0 : r.inv_freq.front()) + " .. " +
         G(r.inv_freq.empty() ? 0 : r.inv_freq.back()) + ").</p>" + svg::Heatmap(g);
}

std::string GateSection(const ProfileResult& r) {
  if (r.attn_gates.empty() && r.norm_gates.empty()) return "";
  std::string o = "<h2>Gates</h2>";
  if (!r.attn_gates.empty()) {
    svg::Grid g = Titled("mean attention output gate per layer and head");
    g.color = "#2c7bb6";
    for (int h = 0; h < r.config.n_heads; ++h) g.col_labels.push_back("h" + std::to_string(h));
    for (const GateProfile& gp : r.attn_gates) {
      if (gp.index == 0) {
        g.row_labels.push_back("layer " + std::to_string(gp.layer));
        g.values.emplace_back();
      }
      g.values.back().push_back(gp.mean);
    }
    o += svg::Heatmap(g);
  }
  if (!r.norm_gates.empty()) {
    o += "<table>" + Row({"layer", "norm", "mean gate", "closed fraction"}, true);
    for (const GateProfile& gp : r.norm_gates) {
      const char* which = gp.layer == r.config.n_layers ? "final" : gp.index == 0 ? "attn" : "ffn";
      o += Row({std::to_string(gp.layer), which, F("%.3f", gp.mean), F("%.3f", gp.closed)});
    }
    o += "</table>";
  }
  return o;
}

}  // namespace

std::string ProfileHtml(const ProfileResult& r, const ProfileMeta& meta) {
  std::string o = "<!DOCTYPE html><html><head><meta charset='utf-8'><title>sinkquant profile</title>"
                  "<style>" + std::string(kStyle) + "</style></head><body>";
  o += Header(r, meta);
  o += LayerCharts(r);
  o += WorstSite(r);
  o += MassiveSection(r);
  o += SinkSection(r);
  o += ResidualSinkSection(r);
  o += OutlierTables(r);
  o += RopeSection(r);
  o += GateSection(r);
  o += SiteTable(r);
  o += "<h2>Summary</h2><pre>" + Escape(ProfileSummary(r)) + "</pre>";
  return o + "</body></html>\n";
}

}  // namespace sq
