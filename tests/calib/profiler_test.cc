// The profiler against models built here with planted extremes: each plant must be found at
// its exact layer, head, position and channel, and nothing else may be flagged.
#include "calib/profiler.h"

#include <catch2/catch.hpp>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "calib/profile_report.h"
#include "core/threads.h"
#include "formats/hf_config.h"
#include "model/random_weights.h"
#include "tests/model/arch_cases.h"
#include "tests/test_util.h"

using namespace sq;

namespace {

constexpr int kBos = 1;

// GQA: heads 0,1 read KV head 0; heads 2,3 read KV head 1.
ModelConfig ProfilerConfig() {
  ModelConfig c = test::SmallConfig({.hidden = 64, .intermediate = 128, .n_layers = 3,
                                     .head_dim = 16, .vocab = 32, .max_position = 128});
  c.bos_id = kBos;
  return c;
}

// Rewrites one stored tensor through a float copy (views are read-only).
void Edit(ModelWeights& w, TensorView& slot, const std::function<void(Mat&)>& fn) {
  Mat m = ToMat(slot);
  fn(m);
  slot = w.Own(m, slot.shape);
}
void EditVec(ModelWeights& w, TensorView& slot, const std::function<void(Vec&)>& fn) {
  Vec v = ToVec(slot);
  fn(v);
  slot = w.Own(Mat(v), slot.shape);
}

// `n` windows of `T` tokens: BOS, then ids in [2, vocab) other than `avoid`.
std::vector<std::vector<int>> Windows(int n, int T, int vocab, int avoid, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> id(2, vocab - 1);
  std::vector<std::vector<int>> out(n);
  for (auto& w : out) {
    w.push_back(kBos);
    while (static_cast<int>(w.size()) < T) {
      const int t = id(rng);
      if (t != avoid) w.push_back(t);
    }
  }
  return out;
}

std::string Text(int id) { return "<" + std::to_string(id) + ">"; }

ProfileResult Profile(const ModelConfig& c, ModelWeights w,
                      const std::vector<std::vector<int>>& windows) {
  const Model m = BuildDenseModel(c, std::move(w));
  return RunProfile(m, windows, ProfileThresholds{}, Text);
}

int SinkHeads(const ProfileResult& r) {
  int n = 0;
  for (const auto& h : r.heads) n += h.sink ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("a random model has no outliers, no massive activations, no sinks", "[calib]") {
  const ModelConfig c = ProfilerConfig();
  const ProfileResult r = Profile(c, RandomWeights(c, 7), Windows(6, 48, c.vocab, -1, 1));
  CHECK(r.windows == 6);
  CHECK(r.tokens == 6 * 48);
  CHECK(r.outlier_channels.empty());
  CHECK(r.massive.empty());
  CHECK(r.massive_first_layer == -2);
  CHECK(SinkHeads(r) == 0);
  CHECK(r.residual_sinks.empty());
  CHECK(r.outlier_tokens.empty());
  REQUIRE(r.heads.size() == size_t(c.n_layers * c.n_heads));
  for (const auto& h : r.heads) {
    CHECK(h.queries == 6 * (48 - 16));
    CHECK(h.first_mass[0] < 0.15);  // random scores: about 1/t on each key
  }
  // Sites and their shapes: 4 per layer and the lm_head input.
  REQUIRE(r.sites.size() == size_t(4 * c.n_layers + 1));
  CHECK(r.FindSite(Site::kDownInput, 2)->stats.channels() == c.intermediate);
  CHECK(r.FindSite(Site::kHeadInput, c.n_layers)->stats.rows() == 6 * 48);
  CHECK(r.attn_gates.empty());
  CHECK(r.norm_gates.empty());
}

// Position 0 becomes a sink of layer 1, head 2 (KV head 1): BOS's embedding is one-hot on
// channel `cs`, so its normed input is ~8 e_cs; layer 1's key row of dim `a` (the first dim of
// the lowest-frequency rotary pair, which RoPE barely turns) reads only e_cs, and head 2's
// query on dim `a` is a constant bias, so every query scores key 0 at ~16 and the rest at ~N(0,4).
// Its value is ~0: KV head 1's value rows ignore e_cs, and layer 0 adds nothing to BOS.
TEST_CASE("a planted sink head with a drained value is found at its layer and head", "[calib]") {
  for (RopePairing pairing : {RopePairing::kHalf, RopePairing::kAdjacent}) {
    ModelConfig c = ProfilerConfig();
    c.rope_pairing = pairing;
    c.qkv_bias = true;  // the query bias makes every query of head 2 look at the sink
    const int cs = 11, hd = c.head_dim, pair = hd / 2 - 1;
    const int a = pairing == RopePairing::kHalf ? pair : 2 * pair;
    const int kSinkLayer = 1, kSinkHead = 2, kSinkKv = 1, kOtherHead = 3;
    ModelWeights w = RandomWeights(c, 3);
    Edit(w, w.embed, [&](Mat& e) {
      e.row(kBos).setZero();
      e(kBos, cs) = 30;
    });
    LayerWeights& L0 = w.layers[0];
    Edit(w, L0.wv, [&](Mat& m) { m.col(cs).setZero(); });    // BOS's layer-0 value is ~0
    Edit(w, L0.w_up, [&](Mat& m) { m.col(cs).setZero(); });  // and its FFN output is 0
    LayerWeights& L1 = w.layers[kSinkLayer];
    Edit(w, L1.wk, [&](Mat& m) {
      m.row(kSinkKv * hd + a).setZero();
      m(kSinkKv * hd + a, cs) = 1;
    });
    Edit(w, L1.wv, [&](Mat& m) { m.block(kSinkKv * hd, cs, hd, 1).setZero(); });
    Edit(w, L1.wq, [&](Mat& m) {
      m.row(kSinkHead * hd + a).setZero();
      m.row(kOtherHead * hd + a).setZero();  // head 3 shares the key: keep it blind to it
    });
    EditVec(w, L1.bq, [&](Vec& b) {
      b[kSinkHead * hd + a] = 8;
      b[kOtherHead * hd + a] = 0;
    });
    const ProfileResult r = Profile(c, w, Windows(8, 40, c.vocab, -1, 2));

    CHECK(SinkHeads(r) == 1);
    for (const auto& h : r.heads) {
      if (h.layer != kSinkLayer || h.head != kSinkHead) continue;
      CHECK(h.kv_head == kSinkKv);
      CHECK(h.sink);
      CHECK(h.sink_position == 0);
      CHECK(h.first_mass[0] > 0.95);
      CHECK(h.top_key_position == 0);
      CHECK(h.top_key_share > 0.95);
      CHECK(h.value_ratio[0] < 0.05);
      CHECK(h.noop);
      // Its output is the sink's tiny value: the sink is nearly all of it, and it is ~0.
      CHECK(h.contribution[0] > 0.5);
      CHECK(h.output_ratio < 0.05);
    }
    // Head 3 reads the same drained value (GQA), head 0 reads KV head 0 whose value is normal.
    const auto& h3 = r.heads[kSinkLayer * c.n_heads + kOtherHead];
    const auto& h0 = r.heads[kSinkLayer * c.n_heads + 0];
    CHECK(h3.value_ratio[0] == Approx(r.heads[kSinkLayer * c.n_heads + kSinkHead].value_ratio[0]));
    CHECK(h0.value_ratio[0] > 0.3);
    CHECK(h0.output_ratio > 0.1);
    CHECK(h0.contribution[0] < 0.3);
    // The sink key's energy sits in the planted low-frequency pair.
    const RopeHead& k = r.rope_keys[kSinkLayer * c.n_kv_heads + kSinkKv];
    const auto top = std::max_element(k.sink_key_share.begin(), k.sink_key_share.end());
    CHECK(top - k.sink_key_share.begin() == pair);
    CHECK(*top > 0.5);
    CHECK(k.other_key_share[pair] < 0.3);
    CHECK(r.massive.empty());
    CHECK(r.residual_sinks.empty());
    CHECK(r.outlier_channels.empty());
    CHECK(r.outlier_tokens.empty());
  }
}

// Token 5 appears once, at position 9 of window 2. Its embedding is 30 e_ct, and channel `ct` is
// exactly 0 on every other token up to layer 1's FFN (embedding column and the rows of o_proj /
// down_proj that write it are zero). Layer 1's neuron n reads only e_ct through gate and up, so
// it fires (~500) on token 5 only, and down_proj writes it into residual channel `cm` (x6).
TEST_CASE("a massive activation planted by an FFN is found at its layer, token and channel",
          "[calib]") {
  const ModelConfig c = ProfilerConfig();
  const int kTrigger = 5, ct = 20, cm = 33, n = 77, kLayer = 1, kPos = 9, kWindow = 2;
  ModelWeights w = RandomWeights(c, 4);
  Edit(w, w.embed, [&](Mat& e) {
    e.col(ct).setZero();
    e.row(kTrigger).setZero();
    e(kTrigger, ct) = 30;
  });
  for (int l = 0; l <= kLayer; ++l) Edit(w, w.layers[l].wo, [&](Mat& m) { m.row(ct).setZero(); });
  Edit(w, w.layers[0].w_down, [&](Mat& m) { m.row(ct).setZero(); });
  LayerWeights& L = w.layers[kLayer];
  for (TensorView* gu : {&L.w_gate, &L.w_up}) {
    Edit(w, *gu, [&](Mat& m) {
      m.row(n).setZero();
      m(n, ct) = 3;
    });
  }
  Edit(w, L.w_down, [&](Mat& m) {
    m.col(n).setZero();
    m(cm, n) = 6;
  });
  auto windows = Windows(8, 64, c.vocab, kTrigger, 5);
  windows[kWindow][kPos] = kTrigger;
  const ProfileResult r = Profile(c, w, windows);

  CHECK(r.massive_first_layer == kLayer);
  REQUIRE(r.massive.size() == size_t(c.n_layers - kLayer));  // it persists in the residual
  for (const MassiveActivation& ma : r.massive) {
    CHECK(ma.channel == cm);
    CHECK(ma.count == 1);
    CHECK(ma.max.position == kPos);
    CHECK(ma.max.window == kWindow);
    CHECK(ma.max.token == kTrigger);
    CHECK(std::abs(ma.max.value) > 1000);
    CHECK(r.token_text.at(kTrigger) == "<5>");
  }
  CHECK(r.massive[0].layer == kLayer);
  // The neuron that writes it is the one outlier channel, and its token the one outlier token.
  REQUIRE(r.outlier_channels.size() == 1);
  CHECK(r.outlier_channels[0].site == Site::kDownInput);
  CHECK(r.outlier_channels[0].layer == kLayer);
  CHECK(r.outlier_channels[0].channel == n);
  REQUIRE(r.outlier_tokens.size() == 1);
  CHECK(r.outlier_tokens[0].layer == kLayer);
  CHECK(r.outlier_tokens[0].position == kPos);
  CHECK(r.outlier_tokens[0].token == kTrigger);
  CHECK(r.outlier_tokens[0].count == 1);
  CHECK(SinkHeads(r) == 0);
  CHECK(r.residual_sinks.empty());
}

// Residual channel 45 is 40 on every token (an embedding column) and every norm weight on it is
// 0.005: RMSNorm's implicit rescaling, as in Qiu et al. 2026.
TEST_CASE("a planted residual sink is found with its tiny norm weights", "[calib]") {
  const ModelConfig c = ProfilerConfig();
  const int cr = 45;
  ModelWeights w = RandomWeights(c, 6);
  Edit(w, w.embed, [&](Mat& e) { e.col(cr).setConstant(40); });
  for (LayerWeights& L : w.layers) {
    EditVec(w, L.attn_norm, [&](Vec& g) { g[cr] = 0.005f; });
    EditVec(w, L.ffn_norm, [&](Vec& g) { g[cr] = 0.005f; });
  }
  EditVec(w, w.final_norm, [&](Vec& g) { g[cr] = 0.005f; });
  const ProfileResult r = Profile(c, w, Windows(6, 48, c.vocab, -1, 7));

  REQUIRE(r.residual_sinks.size() == 1);
  const ResidualSink& s = r.residual_sinks[0];
  CHECK(s.dim == cr);
  CHECK(s.factor > 20);
  CHECK(s.h_avg == Approx(40).epsilon(0.1));
  CHECK(s.gamma_ratio == Approx(0.005));
  REQUIRE(s.attn_norm.size() == size_t(c.n_layers));
  CHECK(s.ffn_norm[2] == Approx(0.005));
  CHECK(s.final_norm == Approx(0.005));
  CHECK(r.massive.empty());
  CHECK(SinkHeads(r) == 0);
  CHECK(r.outlier_channels.empty());
  CHECK(r.outlier_tokens.empty());
}

TEST_CASE("profile statistics do not depend on the thread count", "[calib]") {
  const ModelConfig c = ProfilerConfig();
  const auto windows = Windows(3, 40, c.vocab, -1, 9);
  const int before = NumThreads();
  SetNumThreads(1);
  const ProfileResult a = Profile(c, RandomWeights(c, 8), windows);
  SetNumThreads(2);
  const ProfileResult b = Profile(c, RandomWeights(c, 8), windows);
  SetNumThreads(before);
  for (size_t i = 0; i < a.sites.size(); ++i) {
    CHECK(a.sites[i].stats.absmax() == b.sites[i].stats.absmax());
    CHECK(a.sites[i].stats.Kurtosis() == b.sites[i].stats.Kurtosis());
  }
  for (size_t i = 0; i < a.heads.size(); ++i) {
    CHECK(a.heads[i].first_mass == b.heads[i].first_mass);
    CHECK(a.heads[i].contribution == b.heads[i].contribution);
  }
  CHECK(a.h_avg == b.h_avg);
}

TEST_CASE("RoPE bands report NoPE layers and cover only the rotated dims", "[calib][arch]") {
  for (const test::ArchCase& a : test::ArchCases()) {
    if (a.name != "smollm3_nope" && a.name != "phi3_partial_window") continue;
    INFO(a.name);
    const ModelConfig c = HfConfigFromJson(a.config, a.name);
    const ProfileResult r = Profile(c, RandomWeights(c, 3), Windows(2, 24, c.vocab, -1, 4));
    const size_t pairs = a.rotary_dim / 2;
    CHECK(r.inv_freq.size() == pairs);
    REQUIRE(r.rope_keys.size() == size_t(c.n_layers * c.n_kv_heads));
    for (const RopeHead& k : r.rope_keys) {
      CHECK(k.rope == a.rope[k.layer]);
      CHECK(k.pair_absmax.size() == pairs);
      CHECK(k.pair_absmax[0] > 0);
    }
    const nlohmann::json j = ProfileToJson(r, {});
    nlohmann::json nope = nlohmann::json::array();
    for (int l = 0; l < c.n_layers; ++l) {
      if (!a.rope[l]) nope.push_back(l);
    }
    CHECK(j["rope"]["nope_layers"] == nope);
    CHECK(j["rope"]["rotary_dim"] == a.rotary_dim);
  }
}

TEST_CASE("RoPE bands give Gemma 3's sliding layers their own local table", "[calib][gemma]") {
  for (const test::ArchCase& a : test::ArchCases()) {
    if (a.name != "gemma3") continue;
    const ModelConfig c = HfConfigFromJson(a.config, a.name);
    const ProfileResult r = Profile(c, RandomWeights(c, 3), Windows(2, 24, c.vocab, -1, 4));
    const size_t pairs = a.rotary_dim / 2;
    REQUIRE(r.inv_freq.size() == pairs);
    REQUIRE(r.local_inv_freq.size() == pairs);
    // HF: 1 / theta^(2i / rotary_dim), the global table divided by the linear factor.
    for (size_t i = 0; i < pairs; ++i) {
      const double e = 2.0 * static_cast<double>(i) / a.rotary_dim;
      CHECK(r.local_inv_freq[i] == Approx(std::pow(a.local_theta, -e)).epsilon(1e-6));
      CHECK(r.inv_freq[i] == Approx(std::pow(1e6, -e) / a.linear_factor).epsilon(1e-6));
    }
    const nlohmann::json j = ProfileToJson(r, {});
    nlohmann::json local = nlohmann::json::array();
    for (int l = 0; l < c.n_layers; ++l) {
      if (a.window[l] > 0) local.push_back(l);
    }
    CHECK(j["rope"]["local_rope_layers"] == local);
    CHECK(j["rope"]["local_inv_freq"].size() == pairs);
  }
  // A model without a local table writes neither key.
  const ModelConfig c = ProfilerConfig();
  const nlohmann::json j =
      ProfileToJson(Profile(c, RandomWeights(c, 3), Windows(1, 16, c.vocab, -1, 4)), {});
  CHECK_FALSE(j["rope"].contains("local_inv_freq"));
}
