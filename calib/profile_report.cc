#include "calib/profile_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "formats/json_util.h"

namespace sq {

namespace {

using nlohmann::json;

// Numbers are written as the shortest text of their float value: stable and compact.
json Num(double v) { return std::isfinite(v) ? JsonFloat(static_cast<float>(v)) : json(nullptr); }

json Nums(const std::vector<double>& v) {
  json a = json::array();
  for (double x : v) a.push_back(Num(x));
  return a;
}

std::string Fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), f, v);
  return buf;
}

std::string TokenOf(const ProfileResult& r, int id) {
  auto it = r.token_text.find(id);
  return it == r.token_text.end() ? "" : it->second;
}

json EntryJson(const ProfileResult& r, const ResidualEntry& e) {
  return {{"value", Num(e.value)},   {"channel", e.channel}, {"position", e.position},
          {"token", e.token},        {"text", TokenOf(r, e.token)}, {"window", e.window},
          {"row_median", Num(e.row_median)},
          {"ratio", Num(e.row_median > 0 ? std::abs(e.value) / e.row_median : 0)}};
}

json ModelJson(const ModelConfig& c, const ProfileMeta& m) {
  return {{"path", m.model_path},
          {"architecture", c.architecture},
          {"hidden", c.hidden},
          {"intermediate", c.intermediate},
          {"layers", c.n_layers},
          {"heads", c.n_heads},
          {"kv_heads", c.n_kv_heads},
          {"head_dim", c.head_dim},
          {"vocab", c.vocab},
          {"rope_theta", Num(c.rope_theta)},
          {"rope_pairing", c.rope_pairing == RopePairing::kHalf ? "half" : "adjacent"},
          {"attn_output_gate", c.attn_output_gate},
          {"gated_norm_rank", c.gated_norm_rank}};
}

json ThresholdsJson(const ProfileThresholds& t) {
  return {{"outlier_ratio", t.outlier_ratio},
          {"massive_abs", t.massive_abs},
          {"massive_rel", t.massive_rel},
          {"sink_min_query", t.sink_min_query},
          {"sink_positions", t.sink_positions},
          {"sink_mass", t.sink_mass},
          {"drain_ratio", t.drain_ratio},
          {"residual_sink_factor", t.residual_sink_factor},
          {"outlier_token_ratio", t.outlier_token_ratio},
          {"gate_closed", t.gate_closed}};
}

json SitesJson(const ProfileResult& r) {
  json a = json::array();
  for (const SiteProfile& s : r.sites) {
    const ChannelStats& st = s.stats;
    const double med = st.MedianChannelAbsMax();
    a.push_back({{"site", SiteName(s.site)},
                 {"layer", s.layer},
                 {"channels", st.channels()},
                 {"tokens", st.rows()},
                 {"absmax", Num(st.AbsMax())},
                 {"median_abs", Num(st.MedianAbs())},
                 {"median_channel_absmax", Num(med)},
                 {"ratio", Num(med > 0 ? st.AbsMax() / med : 0)},
                 {"kurtosis", Num(st.Kurtosis())},
                 {"channel_absmax", Nums(st.absmax())},
                 {"channel_mean_abs", Nums(st.MeanAbs())},
                 {"channel_rms", Nums(st.Rms())}});
  }
  return a;
}

json MassiveJson(const ProfileResult& r) {
  json entries = json::array();
  for (const MassiveActivation& m : r.massive) {
    json pos = json::array(), tok = json::array();
    for (const auto& [p, n] : m.positions) pos.push_back({{"position", p}, {"count", n}});
    for (const auto& [t, n] : m.tokens) {
      tok.push_back({{"token", t}, {"text", TokenOf(r, t)}, {"count", n}});
    }
    entries.push_back({{"layer", m.layer}, {"channel", m.channel}, {"count", m.count},
                       {"max", EntryJson(r, m.max)}, {"positions", pos}, {"tokens", tok}});
  }
  return {{"first_layer", r.massive_first_layer == -2 ? json(nullptr) : json(r.massive_first_layer)},
          {"entries", entries}};
}

json AttentionJson(const ProfileResult& r) {
  json heads = json::array();
  for (const HeadAttentionProfile& h : r.heads) {
    heads.push_back({{"layer", h.layer},
                     {"head", h.head},
                     {"kv_head", h.kv_head},
                     {"queries", h.queries},
                     {"first_mass", Nums(h.first_mass)},
                     {"top_key_mass", Num(h.top_key_mass)},
                     {"top_key_position", h.top_key_position},
                     {"top_key_share", Num(h.top_key_share)},
                     {"value_ratio", Nums(h.value_ratio)},
                     {"contribution", Nums(h.contribution)},
                     {"mean_output_norm", Num(h.mean_output_norm)},
                     {"output_ratio", Num(h.output_ratio)},
                     {"sink", h.sink},
                     {"sink_position", h.sink ? json(h.sink_position) : json(nullptr)},
                     {"noop", h.noop}});
  }
  return {{"sink_windows", r.sink_windows}, {"heads", heads}};
}

json ResidualJson(const ProfileResult& r) {
  json layers = json::array();
  for (const ResidualLayer& l : r.residual) {
    layers.push_back({{"layer", l.layer},
                      {"absmax", Num(l.absmax)},
                      {"median_abs", Num(l.abs_hist.Quantile(0.5))},
                      {"max", EntryJson(r, l.max)}});
  }
  return layers;
}

json ResidualSinksJson(const ProfileResult& r) {
  std::vector<int> order(r.h_avg.size());
  for (size_t j = 0; j < order.size(); ++j) order[j] = static_cast<int>(j);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return r.h_avg[a] > r.h_avg[b]; });
  json dims = json::array();
  for (const ResidualSink& s : r.residual_sinks) {
    dims.push_back({{"dim", s.dim},
                    {"h_avg", Num(s.h_avg)},
                    {"factor", Num(s.factor)},
                    {"attn_norm", Nums(s.attn_norm)},
                    {"ffn_norm", Nums(s.ffn_norm)},
                    {"final_norm", Num(s.final_norm)},
                    {"gamma_ratio", Num(s.gamma_ratio)}});
  }
  return {{"h_avg", Nums(r.h_avg)}, {"median_h_avg", Num(r.median_h_avg)}, {"order", order},
          {"dims", dims}};
}

json RopeJson(const ProfileResult& r) {
  json q = json::array(), k = json::array();
  for (const RopeHead& h : r.rope_queries) {
    q.push_back({{"layer", h.layer},
                 {"head", h.head},
                 {"rope", h.rope},
                 {"pair_absmax", Nums(h.pair_absmax)}});
  }
  for (const RopeHead& h : r.rope_keys) {
    k.push_back({{"layer", h.layer},
                 {"kv_head", h.head},
                 {"rope", h.rope},
                 {"pair_absmax", Nums(h.pair_absmax)},
                 {"sink_key_share", Nums(h.sink_key_share)},
                 {"other_key_share", Nums(h.other_key_share)}});
  }
  json nope = json::array(), local = json::array();
  for (int l = 0; l < r.config.n_layers; ++l) {
    if (!r.config.rope(l)) nope.push_back(l);
    if (r.config.rope(l) && LocalRope(r.config, l)) local.push_back(l);
  }
  json out = {{"inv_freq", Nums(r.inv_freq)},
              {"rotary_dim", r.config.rope_dim()},
              {"nope_layers", nope},
              {"query", q},
              {"key", k}};
  if (!r.local_inv_freq.empty()) {
    out["local_inv_freq"] = Nums(r.local_inv_freq);
    out["local_rope_layers"] = local;
  }
  return out;
}

json GatesJson(const ProfileResult& r) {
  json attn = json::array(), norm = json::array();
  for (const GateProfile& g : r.attn_gates) {
    attn.push_back({{"layer", g.layer}, {"head", g.index}, {"mean", Num(g.mean)},
                    {"closed", Num(g.closed)}});
  }
  for (const GateProfile& g : r.norm_gates) {
    const char* which = g.layer == r.config.n_layers ? "final" : g.index == 0 ? "attn" : "ffn";
    norm.push_back({{"layer", g.layer}, {"norm", which}, {"mean", Num(g.mean)},
                    {"closed", Num(g.closed)}});
  }
  return {{"attn", attn}, {"norm", norm}};
}

}  // namespace

std::string LayerName(int layer) { return layer < 0 ? "emb" : std::to_string(layer); }

std::string QuoteToken(const std::string& text) {
  std::string out = "'";
  for (unsigned char ch : text) {
    if (ch == '\n') out += "\\n";
    else if (ch == '\t') out += "\\t";
    else if (ch == '\r') out += "\\r";
    else if (ch < 0x20) out += Fmt("\\x%02x", ch);
    else out += static_cast<char>(ch);
  }
  return out + "'";
}

nlohmann::json ProfileToJson(const ProfileResult& r, const ProfileMeta& meta) {
  json outliers = json::array();
  for (const OutlierChannel& o : r.outlier_channels) {
    outliers.push_back({{"site", SiteName(o.site)}, {"layer", o.layer}, {"channel", o.channel},
                        {"absmax", Num(o.absmax)}, {"ratio", Num(o.ratio)}});
  }
  json tokens = json::array();
  for (const OutlierToken& o : r.outlier_tokens) {
    tokens.push_back({{"layer", o.layer}, {"position", o.position}, {"token", o.token},
                      {"text", TokenOf(r, o.token)}, {"count", o.count},
                      {"max_ratio", Num(o.max_ratio)}, {"max_value", Num(o.max_value)}});
  }
  return {{"schema", kProfileSchema},
          {"model", ModelJson(r.config, meta)},
          {"tokenizer", {{"path", meta.tokenizer_path}}},
          {"data", {{"path", meta.data_path}, {"sha256", meta.data_sha256},
                    {"window_mode", meta.window_mode}, {"ctx", meta.ctx},
                    {"max_tokens", meta.max_tokens}, {"seed", meta.seed},
                    {"windows", r.windows}, {"tokens", r.tokens}}},
          {"thresholds", ThresholdsJson(r.thresholds)},
          {"sites", SitesJson(r)},
          {"outlier_channels", outliers},
          {"residual", ResidualJson(r)},
          {"massive_activations", MassiveJson(r)},
          {"attention", AttentionJson(r)},
          {"residual_sinks", ResidualSinksJson(r)},
          {"outlier_tokens", tokens},
          {"rope", RopeJson(r)},
          {"gates", GatesJson(r)},
          {"verdict", ProfileVerdict(r)}};
}

}  // namespace sq
