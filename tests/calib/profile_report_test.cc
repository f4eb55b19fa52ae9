// The report layer on a hand-made ProfileResult: JSON keys and values, summary tables with their
// thresholds, the verdict, and an HTML page without scripts or external resources.
#include <catch2/catch.hpp>

#include "calib/html_report.h"
#include "calib/profile_report.h"

using namespace sq;

namespace {

ProfileResult Made() {
  ProfileResult r;
  r.config.hidden = 4, r.config.n_layers = 1, r.config.n_heads = 2, r.config.n_kv_heads = 1;
  r.config.head_dim = 4, r.config.intermediate = 8;
  r.windows = 2, r.tokens = 40, r.sink_windows = 2;
  r.inv_freq = {1.0, 0.01};
  for (Site s : {Site::kAttnInput, Site::kOInput, Site::kFfnInput, Site::kDownInput}) {
    r.sites.push_back({s, 0, ChannelStats(s == Site::kDownInput ? 8 : 4)});
  }
  r.sites.push_back({Site::kHeadInput, 1, ChannelStats(4)});
  Mat x = Mat::Ones(3, 4);
  x(1, 2) = 50;
  r.sites[0].stats.Add(x);
  r.outlier_channels.push_back({Site::kAttnInput, 0, 2, 50, 50});
  r.residual.resize(2);
  r.residual[0].layer = -1, r.residual[1].layer = 0;
  MassiveActivation m;
  m.layer = 0, m.channel = 3, m.count = 2, m.max = {-812.5, 3, 0, 7, 1, 0.5};
  m.positions[0] = 2, m.tokens[7] = 2;
  r.massive.push_back(m);
  r.massive_first_layer = 0;
  for (int h = 0; h < 2; ++h) {
    HeadAttentionProfile hp;
    hp.layer = 0, hp.head = h, hp.kv_head = 0, hp.queries = 10;
    hp.first_mass = {h == 1 ? 0.8 : 0.1, 0, 0, 0};
    hp.value_ratio = {0.05, 1, 1, 1};
    hp.contribution = {0.9, 0, 0, 0};
    hp.sink = h == 1, hp.sink_position = h == 1 ? 0 : -1, hp.noop = h == 1;
    r.heads.push_back(hp);
  }
  r.h_avg = {1, 1, 30, 1};
  r.median_h_avg = 1;
  ResidualSink rs;
  rs.dim = 2, rs.h_avg = 30, rs.factor = 30, rs.attn_norm = {0.01}, rs.ffn_norm = {0.02};
  rs.final_norm = 0.03, rs.gamma_ratio = 0.02;
  r.residual_sinks.push_back(rs);
  r.outlier_tokens.push_back({0, 0, 7, 2, 100, 400});
  r.token_text[7] = "\n";
  return r;
}

}  // namespace

TEST_CASE("profile JSON carries every detection with the documented keys", "[calib]") {
  const ProfileResult r = Made();
  ProfileMeta meta;
  meta.model_path = "m", meta.data_path = "d.txt", meta.data_sha256 = "ab", meta.ctx = 20;
  const nlohmann::json j = ProfileToJson(r, meta);
  CHECK(j["schema"] == kProfileSchema);
  CHECK(j["data"]["sha256"] == "ab");
  CHECK(j["data"]["tokens"] == 40);
  CHECK(j["sites"][0]["absmax"] == 50.0);
  CHECK(j["sites"][0]["channel_absmax"] == nlohmann::json({1.0, 1.0, 50.0, 1.0}));
  CHECK(j["outlier_channels"][0]["channel"] == 2);
  CHECK(j["massive_activations"]["first_layer"] == 0);
  CHECK(j["massive_activations"]["entries"][0]["max"]["value"] == -812.5);
  CHECK(j["massive_activations"]["entries"][0]["max"]["text"] == "\n");
  CHECK(j["massive_activations"]["entries"][0]["max"]["ratio"] == 1625.0);
  CHECK(j["attention"]["heads"][1]["sink"] == true);
  CHECK(j["attention"]["heads"][0]["sink_position"].is_null());
  CHECK(j["residual_sinks"]["order"][0] == 2);
  CHECK(j["residual_sinks"]["dims"][0]["ffn_norm"][0] == 0.02);
  CHECK(j["outlier_tokens"][0]["max_ratio"] == 100.0);
}

TEST_CASE("profile summary lists each detection with its threshold, and the verdict names them",
          "[calib]") {
  const ProfileResult r = Made();
  const std::string s = ProfileSummary(r);
  CHECK_THAT(s, Catch::Contains("outlier channels (channel absmax / median channel absmax of its site >= 20): 1"));
  CHECK_THAT(s, Catch::Contains("first after layer 0"));
  CHECK_THAT(s, Catch::Contains("-812.5"));
  CHECK_THAT(s, Catch::Contains("'\\n'"));  // token text is quoted and escaped
  CHECK_THAT(s, Catch::Contains("1 of 2 heads, 1 no-op"));
  CHECK_THAT(s, Catch::Contains("residual sinks (H_avg[j] / median H_avg >= 10"));
  const std::string v = ProfileVerdict(r);
  CHECK_THAT(v, Catch::StartsWith("W4A4 will struggle with: massive activations (up to 812"));
  CHECK_THAT(v, Catch::Contains("1 sink heads (1 no-op)"));
  CHECK_THAT(v, Catch::Contains("1 residual-sink dims"));
  CHECK_THAT(v, Catch::Contains("1 outlier tokens"));

  ProfileResult clean = Made();
  clean.outlier_channels.clear(), clean.massive.clear(), clean.residual_sinks.clear();
  clean.outlier_tokens.clear();
  clean.heads[1].sink = clean.heads[1].noop = false;
  clean.sites[0].stats = ChannelStats(4);
  CHECK_THAT(ProfileVerdict(clean), Catch::StartsWith("W4A4: no outlier channels"));
}

TEST_CASE("profile HTML is one self-contained page", "[calib]") {
  const std::string html = ProfileHtml(Made(), ProfileMeta{});
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("src=") == std::string::npos);
  CHECK(html.find("Massive activations") != std::string::npos);
  CHECK(html.find("&#39;\\n&#39;") != std::string::npos);  // escaped token text
  CHECK(html.find("</html>") != std::string::npos);
}
