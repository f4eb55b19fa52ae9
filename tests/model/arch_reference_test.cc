// Sliding windows, Phi-3 (fused projections, partial rotary) and SmolLM3 NoPE layers against an
// independent reference: tiny checkpoints written here as Hugging Face stores them, loaded by
// sinkquant, and their logits recomputed in double straight from the formulas of HF's
// modeling code (rotate_half on the first rotary_dim dims, keys j with i - window < j <= i),
// sharing no code with the engine.
#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <map>
#include <numbers>
#include <random>

#include "formats/checkpoint.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "model/model.h"
#include "tests/model/arch_cases.h"
#include "tests/config_checks.h"
#include "tests/test_paths.h"
#include "tests/test_util.h"

using namespace sq;
using test::ArchCase;

namespace {

using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// The checkpoint's tensors by Hugging Face name, as the reference reads them.
struct HfTensors {
  std::map<std::string, Mat> t;
  MatD operator()(const std::string& name) const { return t.at(name).cast<double>(); }
};

struct Dims {
  int d, f, L, H, Hkv, hd, V;
};

Dims DimsOf(const nlohmann::json& j) {
  const int H = j["num_attention_heads"];
  const int hd =
      j.contains("head_dim") ? j["head_dim"].get<int>() : j["hidden_size"].get<int>() / H;
  return {j["hidden_size"],         j["intermediate_size"],
          j["num_hidden_layers"],   H,
          j["num_key_value_heads"], hd,
          j["vocab_size"]};
}

// The FFN's input norm: Gemma names it pre_feedforward_layernorm (its post_attention_layernorm
// is the attention output's own norm).
std::string FfnNormName(const ArchCase& a) {
  return a.gemma != 0 ? "pre_feedforward_layernorm" : "post_attention_layernorm";
}

// Random weights under HF names: linears N(0, 1/in), norms around 1, biases small.
HfTensors MakeTensors(const ArchCase& a, uint64_t seed) {
  const Dims s = DimsOf(a.config);
  HfTensors w;
  uint64_t k = seed;
  auto mat = [&](const std::string& name, int rows, int cols, float std) {
    w.t[name] = test::RandomMat(rows, cols, ++k, std);
  };
  // Gemma stores w for a scale of 1 + w: around 0 there, around 1 elsewhere.
  auto norm = [&](const std::string& name, int n) {
    w.t[name] = (test::RandomMat(1, n, ++k, 0.3f).array() + (a.gemma ? 0.0f : 1.0f)).matrix();
  };
  const float in_d = 1 / std::sqrt(float(s.d)), in_f = 1 / std::sqrt(float(s.f));
  mat("model.embed_tokens.weight", s.V, s.d, 1.0f);
  for (int l = 0; l < s.L; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const int q = s.H * s.hd, kv = s.Hkv * s.hd;
    norm(p + "input_layernorm.weight", s.d);
    norm(p + FfnNormName(a) + ".weight", s.d);
    if (a.gemma != 0) {
      norm(p + "post_attention_layernorm.weight", s.d);
      norm(p + "post_feedforward_layernorm.weight", s.d);
    }
    if (a.qk_norm) {
      norm(p + "self_attn.q_norm.weight", s.hd);
      norm(p + "self_attn.k_norm.weight", s.hd);
    }
    if (a.fused) {
      mat(p + "self_attn.qkv_proj.weight", q + 2 * kv, s.d, in_d);
      mat(p + "mlp.gate_up_proj.weight", 2 * s.f, s.d, in_d);
    } else {
      mat(p + "self_attn.q_proj.weight", q, s.d, in_d);
      mat(p + "self_attn.k_proj.weight", kv, s.d, in_d);
      mat(p + "self_attn.v_proj.weight", kv, s.d, in_d);
      mat(p + "mlp.gate_proj.weight", s.f, s.d, in_d);
      mat(p + "mlp.up_proj.weight", s.f, s.d, in_d);
    }
    if (a.qkv_bias) {
      for (const char* b : {"q", "k", "v"}) {
        mat(p + "self_attn." + b + "_proj.bias", 1, std::string(b) == "q" ? q : kv, 0.5f);
      }
    }
    mat(p + "self_attn.o_proj.weight", s.d, q, 1 / std::sqrt(float(q)));
    mat(p + "mlp.down_proj.weight", s.d, s.f, in_f);
  }
  norm("model.norm.weight", s.d);
  if (!a.tied) mat("lm_head.weight", s.V, s.d, in_d);
  return w;
}

std::string WriteCheckpoint(const ArchCase& a, const HfTensors& w) {
  const std::string dir = test::TempDir("arch_" + a.name);
  std::vector<std::shared_ptr<OwnedTensor>> owned;
  std::vector<std::pair<std::string, TensorView>> views;
  for (const auto& [name, m] : w.t) {
    const bool vec = name.find("norm") != std::string::npos || name.ends_with(".bias");
    owned.push_back(MakeOwned(
        m, vec ? std::vector<int64_t>{m.size()} : std::vector<int64_t>{m.rows(), m.cols()}));
    views.emplace_back(name, owned.back()->View());
  }
  WriteSafetensors(dir + "/model.safetensors", views, {{"format", "pt"}});
  std::ofstream(dir + "/config.json") << a.config.dump(2);
  return dir;
}

// ---- the reference: HF's formulas, in double ------------------------------------------------

// Gemma's norms scale by (1 + w) (norm_offset).
MatD RmsNormD(const MatD& x, const MatD& w, double eps, bool offset = false) {
  MatD y = x;
  const double one = offset ? 1.0 : 0.0;
  for (Eigen::Index t = 0; t < x.rows(); ++t) {
    y.row(t) = x.row(t) / std::sqrt(x.row(t).squaredNorm() / x.cols() + eps);
    y.row(t) = y.row(t).cwiseProduct((w.row(0).array() + one).matrix());
  }
  return y;
}

// RMSNorm over each head of x [T, n*hd] (Qwen3's and Gemma 3's q/k norms).
MatD HeadNormD(const MatD& x, const MatD& w, int hd, double eps, bool offset) {
  MatD y = x;
  for (Eigen::Index h = 0; h < x.cols() / hd; ++h) {
    y.middleCols(h * hd, hd) = RmsNormD(x.middleCols(h * hd, hd), w, eps, offset);
  }
  return y;
}

// q_embed = q_rot * cos + rotate_half(q_rot) * sin on dims [0, rot); dims [rot, hd) pass.
// longrope: inv_freq = 1 / (ext_factors * theta^(2i/rot)), the long list when the sequence (all
// of x) is longer than original_max, and cos, sin multiplied by the attention factor.
// Gemma 3: sliding layers use local_theta and no scaling; global ones rope_theta / linear_factor.
void RopeD(MatD& x, int n, int hd, const ArchCase& c, int layer) {
  const int rot = c.rotary_dim, half = rot / 2;
  const bool local = c.local_theta > 0 && c.window[layer] > 0;
  const double theta = local ? c.local_theta : c.config["rope_theta"].get<double>();
  const double linear = local ? 1.0 : c.linear_factor;
  const bool is_long = x.rows() > c.original_max;
  auto ext = [&](int i) {
    return c.short_factor.empty() ? 1.0 : (is_long ? c.long_factor : c.short_factor)[i];
  };
  for (Eigen::Index t = 0; t < x.rows(); ++t) {
    for (int h = 0; h < n; ++h) {
      double* v = x.row(t).data() + h * hd;
      for (int i = 0; i < half; ++i) {
        const double inv = 1.0 / (linear * ext(i) * std::pow(theta, 2.0 * i / rot)), a = t * inv;
        const double cs = std::cos(a) * c.attention, sn = std::sin(a) * c.attention;
        const double x1 = v[i], x2 = v[i + half];
        v[i] = x1 * cs - x2 * sn;
        v[i + half] = x2 * cs + x1 * sn;
      }
    }
  }
}

MatD Linear(const MatD& x, const HfTensors& w, const std::string& name, bool bias = false) {
  MatD y = x * w(name + ".weight").transpose();
  if (bias) y.rowwise() += w(name + ".bias").row(0);
  return y;
}

MatD AttentionD(const ArchCase& a, const HfTensors& w, int l, const MatD& x) {
  const Dims s = DimsOf(a.config);
  const std::string p = "model.layers." + std::to_string(l) + ".self_attn.";
  const int q_dim = s.H * s.hd, kv = s.Hkv * s.hd, T = static_cast<int>(x.rows());
  MatD q, k, v;
  if (a.fused) {  // modeling_phi3: [:query_pos], [query_pos : query_pos + kv], the rest
    const MatD qkv = Linear(x, w, p + "qkv_proj");
    q = qkv.leftCols(q_dim), k = qkv.middleCols(q_dim, kv), v = qkv.rightCols(kv);
  } else {
    q = Linear(x, w, p + "q_proj", a.qkv_bias), k = Linear(x, w, p + "k_proj", a.qkv_bias);
    v = Linear(x, w, p + "v_proj", a.qkv_bias);
  }
  const double eps = a.config["rms_norm_eps"];
  if (a.qk_norm) {
    q = HeadNormD(q, w(p + "q_norm.weight"), s.hd, eps, a.norm_offset);
    k = HeadNormD(k, w(p + "k_norm.weight"), s.hd, eps, a.norm_offset);
  }
  if (a.rope[l]) {
    RopeD(q, s.H, s.hd, a, l);
    RopeD(k, s.Hkv, s.hd, a, l);
  }
  const double scale = a.query_pre_attn_scalar > 0 ? 1 / std::sqrt(a.query_pre_attn_scalar)
                                                   : 1 / std::sqrt(double(s.hd));
  MatD out = MatD::Zero(T, q_dim);
  for (int h = 0; h < s.H; ++h) {
    const int g = h / (s.H / s.Hkv);
    for (int i = 0; i < T; ++i) {
      std::vector<double> e(T, 0.0);
      double z = 0, mx = -1e300;
      auto visible = [&](int j) { return j <= i && (a.window[l] == 0 || j > i - a.window[l]); };
      for (int j = 0; j < T; ++j) {
        if (!visible(j)) continue;
        e[j] = q.row(i).segment(h * s.hd, s.hd).dot(k.row(j).segment(g * s.hd, s.hd)) * scale;
        if (a.attn_softcap > 0) e[j] = std::tanh(e[j] / a.attn_softcap) * a.attn_softcap;
        mx = std::max(mx, e[j]);
      }
      for (int j = 0; j < T; ++j) z += visible(j) ? (e[j] = std::exp(e[j] - mx)) : 0;
      for (int j = 0; j < T; ++j) {
        if (visible(j))
          out.row(i).segment(h * s.hd, s.hd) += e[j] / z * v.row(j).segment(g * s.hd, s.hd);
      }
    }
  }
  return Linear(out, w, p + "o_proj");
}

MatD MlpD(const ArchCase& a, const HfTensors& w, int l, const MatD& x) {
  const std::string p = "model.layers." + std::to_string(l) + ".mlp.";
  MatD g, u;
  if (a.fused) {  // modeling_phi3: gate, up = gate_up_proj(x).chunk(2)
    const MatD gu = Linear(x, w, p + "gate_up_proj");
    g = gu.leftCols(gu.cols() / 2), u = gu.rightCols(gu.cols() / 2);
  } else {
    g = Linear(x, w, p + "gate_proj"), u = Linear(x, w, p + "up_proj");
  }
  // Gemma: gelu_pytorch_tanh, 0.5 z (1 + tanh(sqrt(2 / pi) (z + 0.044715 z^3))).
  auto gelu = [](double z) {
    return 0.5 * z * (1 + std::tanh(std::sqrt(2 / std::numbers::pi) * (z + 0.044715 * z * z * z)));
  };
  auto silu = [](double z) { return z / (1 + std::exp(-z)); };
  const MatD act =
      (a.gemma > 0 ? MatD(g.unaryExpr(gelu)) : MatD(g.unaryExpr(silu))).cwiseProduct(u);
  return Linear(act, w, p + "down_proj");
}

MatD ReferenceLogits(const ArchCase& a, const HfTensors& w, const std::vector<int>& tokens) {
  const Dims s = DimsOf(a.config);
  const double eps = a.config["rms_norm_eps"];
  const MatD e = w("model.embed_tokens.weight");
  MatD h(tokens.size(), s.d);
  for (size_t t = 0; t < tokens.size(); ++t) h.row(t) = e.row(tokens[t]) * a.embed_scale;
  const bool off = a.norm_offset;
  for (int l = 0; l < s.L; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    MatD y = AttentionD(a, w, l, RmsNormD(h, w(p + "input_layernorm.weight"), eps, off));
    if (a.post_norms) y = RmsNormD(y, w(p + "post_attention_layernorm.weight"), eps, off);
    h += y;
    y = MlpD(a, w, l, RmsNormD(h, w(p + FfnNormName(a) + ".weight"), eps, off));
    if (a.post_norms) y = RmsNormD(y, w(p + "post_feedforward_layernorm.weight"), eps, off);
    h += y;
  }
  const MatD x = RmsNormD(h, w("model.norm.weight"), eps, off);
  MatD logits = x * (a.tied ? e : w("lm_head.weight")).transpose();
  if (a.final_softcap > 0) {
    logits = logits.unaryExpr(
        [&](double z) { return std::tanh(z / a.final_softcap) * a.final_softcap; });
  }
  return logits;
}

}  // namespace

TEST_CASE("Sliding window, Phi-3 and NoPE checkpoints match HF's formulas", "[model][arch]") {
  for (const ArchCase& a : test::ArchCases()) {
    SECTION(a.name) {
      const HfTensors w = MakeTensors(a, 17);
      const Checkpoint ck = LoadCheckpoint(WriteCheckpoint(a, w));
      // The parser read the config as HF's config class does.
      const ModelConfig& c = ck.config;
      CHECK(c.rope_dim() == a.rotary_dim);
      for (int l = 0; l < c.n_layers; ++l) {
        CHECK(c.window(l) == a.window[l]);
        CHECK(c.rope(l) == a.rope[l]);
      }
      const Model m = BuildDenseModel(c, ck.weights);
      const std::vector<int> tokens = test::RandomWindows(1, 24, c.vocab, 3)[0].tokens;
      // 24 tokens, and for longrope also 12 (below original_max: the short factors).
      std::vector<size_t> lengths = {tokens.size()};
      if (a.original_max > 0) lengths.push_back(12);
      for (size_t n : lengths) {
        const std::vector<int> window(tokens.begin(), tokens.begin() + n);
        const Mat got = Forward(m, window);
        const MatD ref = ReferenceLogits(a, w, window);
        const double rel =
            (got.cast<double>() - ref).cwiseAbs().maxCoeff() / ref.cwiseAbs().maxCoeff();
        INFO(a.name << " at " << n << " tokens: max |logit diff| / max |logit| = " << rel);
        CHECK(rel < 1e-4);
        // The feature matters: the same weights under full attention and plain RoPE differ.
        ArchCase plain = a;
        plain.window.assign(plain.window.size(), 0);
        plain.rope.assign(plain.rope.size(), true);
        plain.rotary_dim = c.head_dim;
        plain.short_factor.clear();
        plain.attention = 1.0;
        plain.local_theta = 0;
        plain.linear_factor = 1.0;
        const MatD other = ReferenceLogits(plain, w, window);
        CHECK((other - ref).cwiseAbs().maxCoeff() / ref.cwiseAbs().maxCoeff() > 1e-3);
        // Each Gemma feature on its own moves the logits.
        auto moves = [&](const char* what, auto&& off) {
          ArchCase b = a;
          off(b);
          const MatD o = ReferenceLogits(b, w, window);
          INFO(a.name << " without " << what);
          CHECK((o - ref).cwiseAbs().maxCoeff() / ref.cwiseAbs().maxCoeff() > 1e-3);
        };
        if (a.gemma) {
          moves("(1 + w) norms", [](ArchCase& b) { b.norm_offset = false; });
          moves("post-norms", [](ArchCase& b) { b.post_norms = false; });
          moves("embedding scale", [](ArchCase& b) { b.embed_scale = 1.0; });
          moves("query_pre_attn_scalar", [](ArchCase& b) { b.query_pre_attn_scalar = 0; });
          moves("GeGLU", [](ArchCase& b) { b.gemma = -1; });  // Gemma's names, SwiGLU
        }
        if (a.attn_softcap > 0) moves("attention softcap", [](ArchCase& b) { b.attn_softcap = 0; });
        if (a.final_softcap > 0) moves("final softcap", [](ArchCase& b) { b.final_softcap = 0; });
        if (a.local_theta > 0) moves("local theta", [](ArchCase& b) { b.local_theta = 0; });
        if (a.linear_factor != 1) moves("linear factor", [](ArchCase& b) { b.linear_factor = 1; });
        if (a.qk_norm) moves("q/k norms", [](ArchCase& b) { b.qk_norm = false; });
        if (a.original_max == 0) continue;
        ArchCase unscaled = a;  // longrope itself matters too
        unscaled.short_factor.clear();
        unscaled.attention = 1.0;
        const MatD mine = ReferenceLogits(unscaled, w, window);
        CHECK((mine - ref).cwiseAbs().maxCoeff() / ref.cwiseAbs().maxCoeff() > 1e-3);
        ArchCase swapped = a;  // and so does which list the length picks
        std::swap(swapped.short_factor, swapped.long_factor);
        const MatD picked = ReferenceLogits(swapped, w, window);
        CHECK((picked - ref).cwiseAbs().maxCoeff() / ref.cwiseAbs().maxCoeff() > 1e-3);
      }
    }
  }
}

TEST_CASE("A Phi-3 checkpoint written by sinkquant stores fused tensors and reads back",
          "[model][arch]") {
  const ArchCase a = test::ArchCases()[2];
  REQUIRE(a.fused);
  const Checkpoint ck = LoadCheckpoint(WriteCheckpoint(a, MakeTensors(a, 5)));
  const std::string dir = test::TempDir("arch_phi3_rewrite");
  WriteHfCheckpoint(dir, ck.config, ck.weights);
  const SafetensorsFile st = OpenSafetensors(dir + "/model.safetensors");
  CHECK(st.tensors.count("model.layers.0.self_attn.qkv_proj.weight") == 1);
  CHECK(st.tensors.count("model.layers.0.mlp.gate_up_proj.weight") == 1);
  CHECK(st.tensors.count("model.layers.0.self_attn.q_proj.weight") == 0);
  const Checkpoint back = LoadCheckpoint(dir);
  CHECK(back.config.rope_dim() == 8);
  CHECK(back.config.window(1) == 7);
  const std::vector<int> tokens = {1, 5, 9, 2, 7, 3, 11, 4, 8, 6};
  const Mat x = Forward(BuildDenseModel(ck.config, ck.weights), tokens);
  const Mat y = Forward(BuildDenseModel(back.config, back.weights), tokens);
  CHECK((x - y).cwiseAbs().maxCoeff() == 0.0f);
}

TEST_CASE("Unsupported Phi-3 and window settings are clear errors", "[model][arch][formats]") {
  auto parse = [](nlohmann::json j) { return HfConfigFromJson(j, "cfg.json"); };
  nlohmann::json llama = test::TinyShape("LlamaForCausalLM");
  llama["partial_rotary_factor"] = 0.5;
  CHECK_THROWS_WITH(parse(llama), Catch::Contains("partial_rotary_factor") &&
                                      Catch::Contains("Phi3ForCausalLM only"));
  nlohmann::json qwen = test::TinyShape("Qwen2ForCausalLM");
  qwen["layer_types"] = {"full_attention", "sliding_attention", "full_attention"};
  CHECK_THROWS_WITH(parse(qwen), Catch::Contains("layer_types[1] is sliding_attention"));
  qwen["use_sliding_window"] = true;  // the default window, 4096, in layer 1 only
  CHECK(parse(qwen).layer_window == std::vector<int>{0, 4096, 0});
  nlohmann::json smol = test::TinyShape("SmolLM3ForCausalLM");
  smol["no_rope_layers"] = {1, 0};
  CHECK_THROWS_WITH(parse(smol), Catch::Contains("no_rope_layers must be a list of at least"));
  // Without a list, every 4th layer is NoPE (HF's default interval).
  nlohmann::json smol4 = test::TinyShape("SmolLM3ForCausalLM");
  smol4["num_hidden_layers"] = 4;
  CHECK(parse(smol4).layer_nope == std::vector<bool>{false, false, false, true});
}

TEST_CASE("Malformed longrope configs are clear errors naming the key", "[model][arch][formats]") {
  // Tiny Phi-3: head_dim 16, whole-head RoPE, so 8 factors per list.
  auto parse = [](const nlohmann::json& rope, nlohmann::json extra = nlohmann::json::object()) {
    nlohmann::json j = test::TinyShape("Phi3ForCausalLM");
    j["rope_scaling"] = rope;
    j.update(extra);
    return HfConfigFromJson(j, "cfg.json");
  };
  const std::vector<double> ok(8, 1.5);
  auto rope = [&](const char* key, nlohmann::json v) {
    nlohmann::json r = {{"type", "longrope"}, {"short_factor", ok}, {"long_factor", ok}};
    r[key] = v;
    return r;
  };
  using Catch::Contains;
  CHECK_THROWS_WITH(parse(rope("short_factor", {1.0})),
                    Contains("cfg.json: rope_scaling short_factor has 1 entries, expected 8"));
  CHECK_THROWS_WITH(parse(rope("long_factor", nullptr)),
                    Contains("cfg.json: rope_scaling long_factor must be a list of numbers"));
  CHECK_THROWS_WITH(parse(rope("long_factor", "1.0")), Contains("long_factor must be a list"));
  CHECK_THROWS_WITH(parse(rope("short_factor", {1, 1, 1, "x", 1, 1, 1, 1})),
                    Contains("short_factor[3] must be a number"));
  CHECK_THROWS_WITH(parse(rope("long_factor", {1, 1, 1, 1, 1, 1, 1, 1e40})),
                    Contains("long_factor[7] 1e+40 is not a finite float"));
  CHECK_THROWS_WITH(parse(rope("long_factor", {1, 1, 1, 1, 1, 1, 0, 1})),
                    Contains("rope_scaling long_factor entries must be finite and positive"));
  CHECK_THROWS_WITH(parse(rope("attention_factor", -1.0)),
                    Contains("finite positive attention_factor"));
  CHECK_THROWS_WITH(parse(rope("type", "longrope"), {{"original_max_position_embeddings", 0}}),
                    Contains("cfg.json: original_max_position_embeddings must be positive"));
  // Phi3Config's defaults: original 4096 against max_position_embeddings 64, so factor < 1 and
  // attention 1; "su" is longrope's old name.
  const ModelConfig su = parse(rope("type", "su"));
  CHECK(su.rope_scaling.longrope);
  CHECK(su.rope_scaling.original_max_position == 4096);
  CHECK(su.rope_scaling.attention_factor == 1.0f);
  CHECK_FALSE(su.rope_scaling.enabled);
}

TEST_CASE("config.json of windowed, Phi-3 and SmolLM3 models round-trips", "[model][arch]") {
  for (const ArchCase& a : test::ArchCases()) {
    INFO(a.name);
    const ModelConfig c = HfConfigFromJson(a.config, a.name);
    const ModelConfig b = HfConfigFromJson(nlohmann::json::parse(HfConfigToJson(c).dump()), "rt");
    test::CheckSameConfig(b, c);
    if (a.original_max > 0) {
      CHECK(c.rope_scaling.original_max_position == a.original_max);
      CHECK(c.rope_scaling.attention_factor == Approx(a.attention).epsilon(1e-6));
    }
  }
}

TEST_CASE("Gemma configs: HF's defaults, and malformed values are errors naming the key",
          "[model][arch][formats]") {
  auto parse = [](nlohmann::json j) { return HfConfigFromJson(j, "cfg.json"); };
  auto gemma = [](const char* arch, int layers) {
    nlohmann::json j = test::TinyShape(arch);
    j.erase("hidden_act");
    j.erase("rope_theta");
    j["num_hidden_layers"] = layers;
    return j;
  };
  // Gemma2Config: caps 50 and 30, query_pre_attn_scalar 256, head_dim 256, even layers slide
  // (4096), tied embeddings; embeddings times sqrt(64).
  const ModelConfig c2 = parse(gemma("Gemma2ForCausalLM", 3));
  CHECK(c2.attn_softcap == 50.0f);
  CHECK(c2.final_softcap == 30.0f);
  CHECK(c2.query_pre_attn_scalar == 256.0f);
  CHECK(c2.head_dim == 256);
  CHECK(c2.layer_window == std::vector<int>{4096, 0, 4096});
  CHECK(c2.tie_embeddings);
  CHECK(c2.embed_scale == 8.0f);
  CHECK(c2.rope_theta == 10000.0f);
  CHECK((c2.post_norms && c2.norm_weight_offset && !c2.qk_norm));
  CHECK(c2.ffn_activation == FfnActivation::kGeluTanh);
  CHECK(c2.rope_local_theta == 0.0f);
  // Gemma3TextConfig: no caps, theta 1e6 global and 10000 local, every 6th layer global.
  const ModelConfig c3 = parse(gemma("Gemma3ForCausalLM", 7));
  CHECK(c3.attn_softcap == 0.0f);
  CHECK(c3.final_softcap == 0.0f);
  CHECK(c3.qk_norm);
  CHECK(c3.rope_theta == 1e6f);
  CHECK(c3.rope_local_theta == 10000.0f);
  CHECK(c3.layer_window == std::vector<int>{4096, 4096, 4096, 4096, 4096, 0, 4096});
  CHECK(LayerRopeConfig(c3, 0).rope_theta == 10000.0f);
  CHECK(LayerRopeConfig(c3, 5).rope_theta == 1e6f);
  nlohmann::json typed = gemma("Gemma3ForCausalLM", 3);
  typed["layer_types"] = {"full_attention", "sliding_attention", "full_attention"};
  CHECK(parse(typed).layer_window == std::vector<int>{0, 4096, 0});

  using Catch::Contains;
  auto bad = [&](const char* arch, const char* key, nlohmann::json v) {
    nlohmann::json j = gemma(arch, 3);
    j[key] = v;
    return j;
  };
  CHECK_THROWS_WITH(parse(bad("Gemma2ForCausalLM", "attn_logit_softcapping", -1.0)),
                    Contains("cfg.json: attn_logit_softcapping must be positive or null, got -1"));
  CHECK_THROWS_WITH(parse(bad("Gemma2ForCausalLM", "final_logit_softcapping", 0)),
                    Contains("cfg.json: final_logit_softcapping must be positive or null"));
  CHECK_THROWS_WITH(parse(bad("Gemma3ForCausalLM", "attn_logit_softcapping", "x")),
                    Contains("cfg.json: attn_logit_softcapping must be a number"));
  CHECK_THROWS_WITH(parse(bad("Gemma2ForCausalLM", "query_pre_attn_scalar", 0)),
                    Contains("cfg.json: query_pre_attn_scalar must be positive, got 0"));
  CHECK_THROWS_WITH(parse(bad("Gemma3ForCausalLM", "query_pre_attn_scalar", -4.0)),
                    Contains("cfg.json: query_pre_attn_scalar must be positive"));
  CHECK_THROWS_WITH(parse(bad("Gemma3ForCausalLM", "rope_local_base_freq", 0.5)),
                    Contains("cfg.json: rope_local_base_freq must be above 1"));
  CHECK_THROWS_WITH(parse(bad("Gemma2ForCausalLM", "hidden_activation", "silu")),
                    Contains("cfg.json: hidden_activation \"silu\" is not supported"));
  CHECK_THROWS_WITH(parse(bad("Gemma3ForCausalLM", "sliding_window_pattern", 0)),
                    Contains("cfg.json: sliding_window_pattern must be positive"));
  CHECK_THROWS_WITH(
      parse(bad("Gemma3ForCausalLM", "rope_scaling", {{"rope_type", "linear"}, {"factor", -2.0}})),
      Contains("cfg.json: rope_scaling linear factor must be positive"));
  CHECK_THROWS_WITH(parse(bad("Gemma2ForCausalLM", "sliding_window", -3)),
                    Contains("cfg.json: sliding_window must be positive or null"));
}

TEST_CASE("A Gemma checkpoint written by sinkquant stores (1 + w) norms as w and reads back",
          "[model][arch]") {
  for (const ArchCase& a : test::ArchCases()) {
    if (a.gemma == 0) continue;
    INFO(a.name);
    const HfTensors w = MakeTensors(a, 9);
    const Checkpoint ck = LoadCheckpoint(WriteCheckpoint(a, w));
    // Loaded: the scale 1 + w.
    const std::string post = "model.layers.1.post_attention_layernorm.weight";
    CHECK(ToVec(ck.weights.layers[1].attn_post_norm)[3] == 1.0f + w.t.at(post)(0, 3));
    const std::string dir = test::TempDir("arch_rewrite_" + a.name);
    WriteHfCheckpoint(dir, ck.config, ck.weights);
    const SafetensorsFile st = OpenSafetensors(dir + "/model.safetensors");
    CHECK(st.tensors.count("model.layers.2.pre_feedforward_layernorm.weight") == 1);
    CHECK(st.tensors.count("model.layers.2.post_feedforward_layernorm.weight") == 1);
    CHECK(ToVec(st.tensors.at(post))[3] == Approx(w.t.at(post)(0, 3)).margin(1e-7));
    const Checkpoint back = LoadCheckpoint(dir);
    const std::vector<int> tokens = {1, 5, 9, 2, 7, 3, 11, 4, 8, 6};
    const Mat x = Forward(BuildDenseModel(ck.config, ck.weights), tokens);
    const Mat y = Forward(BuildDenseModel(back.config, back.weights), tokens);
    CHECK((x - y).cwiseAbs().maxCoeff() <= 1e-6f * x.cwiseAbs().maxCoeff());
  }
}
