#include "formats/hf_config.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "core/atomic_file.h"
#include "core/error.h"

namespace sq {

namespace {

using nlohmann::json;

enum class Arch { kLlama, kMistral, kQwen2, kQwen3, kPhi3, kSmolLM3, kGemma2, kGemma3 };
struct ArchInfo {
  Arch arch;
  const char* name;
  const char* model_type;
};
constexpr ArchInfo kArchs[] = {
    {Arch::kLlama, "LlamaForCausalLM", "llama"},
    {Arch::kMistral, "MistralForCausalLM", "mistral"},
    {Arch::kQwen2, "Qwen2ForCausalLM", "qwen2"},
    {Arch::kQwen3, "Qwen3ForCausalLM", "qwen3"},
    {Arch::kPhi3, "Phi3ForCausalLM", "phi3"},
    {Arch::kSmolLM3, "SmolLM3ForCausalLM", "smollm3"},
    {Arch::kGemma2, "Gemma2ForCausalLM", "gemma2"},
    {Arch::kGemma3, "Gemma3ForCausalLM", "gemma3_text"},
};

bool IsGemma(Arch a) { return a == Arch::kGemma2 || a == Arch::kGemma3; }

// Qwen2/Qwen3/SmolLM3/Gemma pick attention per layer (layer_types); Mistral and Phi-3 window all.
bool HasLayerTypes(Arch a) {
  return a == Arch::kQwen2 || a == Arch::kQwen3 || a == Arch::kSmolLM3 || IsGemma(a);
}

const char* ArchName(Arch a) {
  for (const auto& info : kArchs) {
    if (info.arch == a) return info.name;
  }
  return "?";
}

const ArchInfo& FindArch(const std::string& name, const std::string& source) {
  std::string supported;
  for (const auto& a : kArchs) {
    if (name == a.name) return a;
    supported += std::string(supported.empty() ? "" : ", ") + a.name;
  }
  throw Error(source + ": unsupported architecture '" + name + "' (supported: " + supported +
              ")");
}

// Typed field readers: absent or null -> default; wrong type -> Error naming the field.
class Fields {
 public:
  Fields(const json& j, std::string source) : j_(j), source_(std::move(source)) {}

  bool Present(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }
  const json& Raw(const char* key) const { return j_[key]; }

  int Int(const char* key, std::optional<int> def = std::nullopt) const {
    if (!Present(key)) return Default(key, def);
    return ToInt(j_[key], key);
  }
  float Float(const char* key, std::optional<float> def = std::nullopt) const {
    if (!Present(key)) return Default(key, def);
    Check(j_[key].is_number(), source_ + ": " + key + " must be a number, got " + j_[key].dump());
    // A double past float's range would become inf (or, converted blindly, undefined).
    const double d = j_[key].get<double>();
    Check(std::isfinite(d) && std::fabs(d) <= std::numeric_limits<float>::max(),
          source_ + ": " + key + " " + j_[key].dump() + " is not a finite float");
    const float f = static_cast<float>(d);
    Check(d == 0 || f != 0, source_ + ": " + key + " " + j_[key].dump() +
                                " underflows to 0 as a float");
    return f;
  }
  bool Bool(const char* key, bool def) const {
    if (!Present(key)) return def;
    Check(j_[key].is_boolean(), source_ + ": " + key + " must be true or false, got " +
                                    j_[key].dump());
    return j_[key].get<bool>();
  }
  int ToInt(const json& v, const std::string& key) const {
    const bool integral = v.is_number_integer() ||
                          (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
    Check(integral, source_ + ": " + key + " must be an integer, got " + v.dump());
    const double d = v.get<double>();
    Check(d >= -(1 << 30) && d <= (1 << 30), source_ + ": " + key + " out of range: " + v.dump());
    return static_cast<int>(d);
  }
  const std::string& source() const { return source_; }

 private:
  template <typename T>
  T Default(const char* key, std::optional<T> def) const {
    Check(def.has_value(), source_ + ": missing required field " + key);
    return *def;
  }
  const json& j_;
  std::string source_;
};

std::string Architecture(const json& j, const std::string& source) {
  Check(j.contains("architectures") && j["architectures"].is_array() &&
            !j["architectures"].empty() && j["architectures"][0].is_string(),
        source + ": missing 'architectures' (a list naming the model class)");
  return j["architectures"][0].get<std::string>();
}

// One longrope factor list: numbers, each a finite float (their count and sign are checked in
// ValidateConfig, once partial_rotary_factor has fixed the rotary dims).
std::vector<float> FactorList(const Fields& rf, const char* key) {
  Check(rf.Present(key) && rf.Raw(key).is_array(),
        rf.source() + " " + key + " must be a list of numbers (one per rotary pair)");
  std::vector<float> out;
  for (size_t i = 0; i < rf.Raw(key).size(); ++i) {
    const std::string name = std::string(key) + "[" + std::to_string(i) + "]";
    const json one = {{name, rf.Raw(key)[i]}};
    out.push_back(Fields(one, rf.source()).Float(name.c_str()));
  }
  return out;
}

// longrope as Hugging Face computes it (_compute_longrope_parameters): a config with
// original_max_position_embeddings (Phi3Config always has one, default 4096) takes
// factor = max_position_embeddings / original; otherwise original = max_position_embeddings
// and factor is rope_scaling's. attention_factor defaults to sqrt(1 + ln factor / ln original),
// 1 when factor <= 1.
RopeScaling ParseLongRope(const Fields& f, const json& r, bool phi3, int max_position) {
  Fields rf(r, f.source() + ": rope_scaling");
  RopeScaling s;
  s.longrope = true;
  s.short_factor = FactorList(rf, "short_factor");
  s.long_factor = FactorList(rf, "long_factor");
  const bool has_original = phi3 || f.Present("original_max_position_embeddings");
  s.original_max_position =
      has_original ? f.Int("original_max_position_embeddings", 4096) : max_position;
  Check(s.original_max_position > 0,
        f.source() + ": original_max_position_embeddings must be positive");
  const double factor = has_original ? double(max_position) / s.original_max_position
                                     : double(rf.Float("factor", 1.0f));
  s.factor = static_cast<float>(factor);
  s.attention_factor =
      rf.Present("attention_factor")
          ? rf.Float("attention_factor")
          : static_cast<float>(
                factor <= 1 ? 1.0
                            : std::sqrt(1 + std::log(factor) / std::log(s.original_max_position)));
  return s;
}

RopeScaling ParseRopeScaling(const Fields& f, bool phi3, int max_position) {
  RopeScaling s;
  if (!f.Present("rope_scaling")) return s;
  const json& r = f.Raw("rope_scaling");
  Check(r.is_object(), f.source() + ": rope_scaling must be null or an object");
  // Hugging Face reads rope_type first and falls back to the legacy type.
  std::string type = "default";
  for (const char* key : {"rope_type", "type"}) {
    if (!r.contains(key) || r[key].is_null()) continue;
    Check(r[key].is_string(), f.source() + ": rope_scaling " + key + " must be a string");
    type = r[key].get<std::string>();
    break;
  }
  if (type == "default") return s;
  // "su" is longrope's first name (early Phi-3 128k configs); Phi3Config renames it.
  if (type == "longrope" || type == "su") return ParseLongRope(f, r, phi3, max_position);
  Fields rf(r, f.source() + ": rope_scaling");
  if (type == "linear") {  // positions / factor, i.e. every inverse frequency / factor
    s.linear = true;
    s.factor = rf.Float("factor");
    Check(s.factor > 0, f.source() + ": rope_scaling linear factor must be positive, got " +
                            std::to_string(s.factor));
    return s;
  }
  Check(type == "llama3", f.source() + ": rope_scaling type '" + type +
                              "' is not supported (supported: llama3, longrope, linear, or null)");
  s.enabled = true;
  s.factor = rf.Float("factor");
  s.low_freq_factor = rf.Float("low_freq_factor");
  s.high_freq_factor = rf.Float("high_freq_factor");
  s.original_max_position = rf.Int("original_max_position_embeddings");
  Check(s.factor >= 1 && s.low_freq_factor > 0 && s.high_freq_factor > s.low_freq_factor &&
            s.original_max_position > 0,
        f.source() + ": rope_scaling llama3 needs factor >= 1, 0 < low_freq_factor < "
                     "high_freq_factor and original_max_position_embeddings > 0, got " +
            r.dump());
  return s;
}

int FirstTokenId(const Fields& f, const char* key) {
  if (!f.Present(key)) return -1;
  const json& v = f.Raw(key);
  if (v.is_array()) {  // Llama 3.1+ lists several end tokens; the first is the primary one
    if (v.empty()) return -1;
    return f.ToInt(v[0], std::string(key) + "[0]");
  }
  return f.ToInt(v, key);
}

// SmolLM3's no_rope_layers (1 = RoPE, 0 = NoPE; at least one entry per layer), or, absent, a
// NoPE layer every no_rope_layer_interval layers (default 4): layer i has RoPE iff
// (i + 1) % interval != 0. Other architectures always rotate (empty).
std::vector<bool> ParseNoRope(const Fields& f, Arch arch, int n_layers) {
  if (arch != Arch::kSmolLM3) return {};
  std::vector<bool> nope(n_layers);
  if (!f.Present("no_rope_layers")) {
    const int every = f.Int("no_rope_layer_interval", 4);
    Check(every > 0, f.source() + ": no_rope_layer_interval must be positive");
    for (int i = 0; i < n_layers; ++i) nope[i] = (i + 1) % every == 0;
    return nope;
  }
  const json& v = f.Raw("no_rope_layers");
  Check(v.is_array() && static_cast<int>(v.size()) >= n_layers,
        f.source() + ": no_rope_layers must be a list of at least num_hidden_layers 0/1 entries");
  for (int i = 0; i < n_layers; ++i) {
    const int use_rope = f.ToInt(v[i], "no_rope_layers[" + std::to_string(i) + "]");
    Check(use_rope == 0 || use_rope == 1,
          f.source() + ": no_rope_layers[" + std::to_string(i) + "] must be 0 or 1");
    nope[i] = use_rope == 0;
  }
  return nope;
}

// The window as Hugging Face's config class leaves it: Mistral defaults to 4096 when the key
// is absent (null means none); Qwen2/Qwen3 keep theirs (default 4096) only with
// use_sliding_window; SmolLM3 likewise, without a default; Llama has none. 0 = none.
int ParseWindowSize(const Fields& f, Arch arch, const json& j) {
  auto size = [&](int def) {  // `def` when absent or null
    const int w = f.Int("sliding_window", def);
    Check(w > 0 || !f.Present("sliding_window"),
          f.source() + ": sliding_window must be positive or null, got " + std::to_string(w));
    return w;
  };
  switch (arch) {
    case Arch::kLlama:
      return 0;
    case Arch::kMistral:
      return size(j.contains("sliding_window") ? 0 : 4096);
    case Arch::kPhi3:
      return size(0);
    case Arch::kQwen2:
    case Arch::kQwen3:
      return f.Bool("use_sliding_window", false) ? size(4096) : 0;
    case Arch::kSmolLM3:
      return f.Bool("use_sliding_window", false) ? size(0) : 0;
    case Arch::kGemma2:
    case Arch::kGemma3:
      return size(j.contains("sliding_window") ? 0 : 4096);
  }
  return 0;
}

// Per layer: the sliding window, or 0 for full attention. An explicit layer_types list wins;
// otherwise Qwen2/Qwen3 window layers i >= max_window_layers (default 28), SmolLM3 its NoPE
// layers, Mistral and Phi-3 every layer. Empty when no layer has a window.
std::vector<int> ParseLayerWindows(const Fields& f, Arch arch, const json& j, int n_layers,
                                   const std::vector<bool>& nope) {
  const int w = ParseWindowSize(f, arch, j);
  std::vector<int> win(n_layers, 0);
  if (HasLayerTypes(arch) && f.Present("layer_types")) {
    const json& t = f.Raw("layer_types");
    Check(t.is_array() && static_cast<int>(t.size()) == n_layers,
          f.source() + ": layer_types must list one type per layer");
    for (int i = 0; i < n_layers; ++i) {
      const std::string at = "layer_types[" + std::to_string(i) + "]";
      Check(t[i] == "full_attention" || t[i] == "sliding_attention",
            f.source() + ": " + at + " " + t[i].dump() +
                " is not supported (full_attention, sliding_attention)");
      if (t[i] != "sliding_attention") continue;
      Check(w > 0, f.source() + ": " + at + " is sliding_attention but no sliding_window is " +
                       "in effect (use_sliding_window false or sliding_window null)");
      win[i] = w;
    }
  } else if (w > 0 && IsGemma(arch)) {
    // Gemma 2: even layers slide; Gemma 3: all but every sliding_window_pattern-th (default 6).
    const int every = arch == Arch::kGemma2 ? 2 : f.Int("sliding_window_pattern", 6);
    Check(every > 0,
          f.source() + ": sliding_window_pattern must be positive, got " + std::to_string(every));
    for (int i = 0; i < n_layers; ++i) {
      const bool sliding = arch == Arch::kGemma2 ? i % 2 == 0 : (i + 1) % every != 0;
      if (sliding) win[i] = w;
    }
  } else if (w > 0) {
    const int first =
        arch == Arch::kQwen2 || arch == Arch::kQwen3 ? f.Int("max_window_layers", 28) : 0;
    for (int i = first; i < n_layers; ++i) {
      if (arch != Arch::kSmolLM3 || nope[i]) win[i] = w;
    }
  }
  for (int v : win) {
    if (v > 0) return win;
  }
  return {};
}

// Phi-3's partial_rotary_factor: RoPE on the first int(head_dim * factor) dims of each head.
// Other architectures here rotate whole heads (their rotate_half would not slice).
int ParseRotaryDim(const Fields& f, Arch arch, int head_dim) {
  if (!f.Present("partial_rotary_factor")) return 0;
  Check(f.Raw("partial_rotary_factor").is_number(),
        f.source() + ": partial_rotary_factor must be a number");
  const double factor = f.Raw("partial_rotary_factor").get<double>();
  if (factor == 1.0) return 0;
  Check(arch == Arch::kPhi3, f.source() + ": partial_rotary_factor " + std::to_string(factor) +
                                 " is supported for Phi3ForCausalLM only");
  Check(factor > 0 && factor < 1, f.source() + ": partial_rotary_factor must be in (0, 1], got " +
                                      f.Raw("partial_rotary_factor").dump());
  const int dim = static_cast<int>(head_dim * factor);  // Python's int(): truncation
  Check(dim >= 2 && dim % 2 == 0, f.source() + ": partial_rotary_factor " +
                                      f.Raw("partial_rotary_factor").dump() + " gives " +
                                      std::to_string(dim) + " rotary dims; must be even and >= 2");
  return dim;
}

// The sliding window: one size; Mistral and Phi-3 apply it to every layer, the others name
// each layer's type.
void WriteWindows(const ModelConfig& c, Arch arch, const std::string& src,
                  nlohmann::ordered_json& j) {
  int w = 0;
  for (int v : c.layer_window) {
    Check(w == 0 || v == 0 || v == w, src + ": layers with different sliding windows");
    w = std::max(w, v);
  }
  if (!HasLayerTypes(arch)) {
    Check(w == 0 || arch != Arch::kLlama, src + ": LlamaForCausalLM has no sliding window");
    for (int v : c.layer_window) {
      Check(v == w, src + ": " + ArchName(arch) + " windows every layer or none");
    }
    if (arch != Arch::kLlama) j["sliding_window"] = w > 0 ? nlohmann::ordered_json(w) : nullptr;
    return;
  }
  j["use_sliding_window"] = w > 0;
  j["sliding_window"] = w > 0 ? nlohmann::ordered_json(w) : nullptr;
  j["layer_types"] = nlohmann::ordered_json::array();
  for (int l = 0; l < c.n_layers; ++l) {
    j["layer_types"].push_back(c.window(l) > 0 ? "sliding_attention" : "full_attention");
  }
}

// Phi-3's partial_rotary_factor and SmolLM3's no_rope_layers, read back exactly as written.
void WriteArchFields(const ModelConfig& c, Arch arch, const std::string& src,
                     nlohmann::ordered_json& j) {
  WriteWindows(c, arch, src, j);
  if (IsGemma(arch)) {
    auto cap = [](float v) { return v > 0 ? JsonFloat(v) : json(nullptr); };
    j["hidden_activation"] = "gelu_pytorch_tanh";
    j["query_pre_attn_scalar"] = JsonFloat(c.query_pre_attn_scalar);
    j["attn_logit_softcapping"] = cap(c.attn_softcap);
    j["final_logit_softcapping"] = cap(c.final_softcap);
    if (arch == Arch::kGemma3) j["rope_local_base_freq"] = JsonFloat(c.rope_local_theta);
  }
  if (arch == Arch::kPhi3) {
    const double factor = static_cast<double>(c.rope_dim()) / c.head_dim;
    Check(static_cast<int>(c.head_dim * factor) == c.rope_dim(),
          src + ": rotary dims " + std::to_string(c.rope_dim()) + " of head_dim " +
              std::to_string(c.head_dim) + " have no exact partial_rotary_factor");
    j["partial_rotary_factor"] = factor;
  }
  if (arch == Arch::kSmolLM3) {
    j["no_rope_layers"] = nlohmann::ordered_json::array();
    for (int l = 0; l < c.n_layers; ++l) j["no_rope_layers"].push_back(c.rope(l) ? 1 : 0);
  }
}

// longrope with every derived number explicit, so any architecture reads it back the same:
// original_max_position_embeddings at the top level (where Phi3Config keeps it) and the
// attention_factor as parsed.
void WriteLongRope(const RopeScaling& s, nlohmann::ordered_json& j) {
  auto list = [](const std::vector<float>& v) {
    json a = json::array();
    for (float x : v) a.push_back(JsonFloat(x));
    return a;
  };
  j["original_max_position_embeddings"] = s.original_max_position;
  j["rope_scaling"] = {{"rope_type", "longrope"},
                       {"short_factor", list(s.short_factor)},
                       {"long_factor", list(s.long_factor)},
                       {"attention_factor", JsonFloat(s.attention_factor)}};
}

// Gemma 2/3 as their config classes and modeling code define them: GeGLU (tanh gelu), four norms
// per layer stored as offsets from 1, embeddings times sqrt(hidden_size), attention scaled by
// query_pre_attn_scalar^-0.5, soft-capped scores and logits (Gemma 2's defaults 50 and 30), and
// Gemma 3's q/k norms and local RoPE theta on sliding layers.
void ParseGemma(const Fields& f, Arch arch, const json& j, ModelConfig& c) {
  if (!IsGemma(arch)) return;
  if (f.Present("hidden_activation")) {
    Check(f.Raw("hidden_activation") == "gelu_pytorch_tanh",
          f.source() + ": hidden_activation " + f.Raw("hidden_activation").dump() +
              " is not supported (gelu_pytorch_tanh)");
  }
  c.ffn_activation = FfnActivation::kGeluTanh;
  c.post_norms = true;
  c.norm_weight_offset = true;
  c.embed_scale = static_cast<float>(std::sqrt(static_cast<double>(c.hidden)));
  c.query_pre_attn_scalar = f.Float("query_pre_attn_scalar", 256.0f);
  Check(c.query_pre_attn_scalar > 0, f.source() + ": query_pre_attn_scalar must be positive, got " +
                                         JsonFloat(c.query_pre_attn_scalar).dump());
  const bool g2 = arch == Arch::kGemma2;
  auto cap = [&](const char* key, float def) {
    if (!j.contains(key)) return def;
    if (j[key].is_null()) return 0.0f;
    const float v = f.Float(key);
    Check(v > 0, f.source() + ": " + key + " must be positive or null, got " + j[key].dump());
    return v;
  };
  c.attn_softcap = cap("attn_logit_softcapping", g2 ? 50.0f : 0.0f);
  c.final_softcap = cap("final_logit_softcapping", g2 ? 30.0f : 0.0f);
  if (arch == Arch::kGemma3) {
    c.qk_norm = true;
    c.rope_local_theta = f.Float("rope_local_base_freq", 10000.0f);
    Check(c.rope_local_theta > 1, f.source() + ": rope_local_base_freq must be above 1, got " +
                                      JsonFloat(c.rope_local_theta).dump());
  }
}

}  // namespace

ModelConfig HfConfigFromJson(const json& j, const std::string& source) {
  Check(j.is_object(), source + ": config is not a JSON object");
  ModelConfig c;
  c.architecture = Architecture(j, source);
  const Arch arch = FindArch(c.architecture, source).arch;
  Fields f(j, source);
  if (f.Present("hidden_act") && !IsGemma(arch)) {  // Gemma reads hidden_activation
    Check(f.Raw("hidden_act") == "silu",
          source + ": hidden_act " + f.Raw("hidden_act").dump() + " is not supported (silu)");
  }
  Check(!f.Bool("mlp_bias", false), source + ": mlp_bias true is not supported");
  c.hidden = f.Int("hidden_size");
  c.intermediate = f.Int("intermediate_size");
  c.n_layers = f.Int("num_hidden_layers");
  c.n_heads = f.Int("num_attention_heads");
  c.n_kv_heads = f.Int("num_key_value_heads", c.n_heads);
  Check(c.n_heads > 0, source + ": num_attention_heads must be positive");
  c.head_dim = f.Int("head_dim", IsGemma(arch) ? 256 : c.hidden / c.n_heads);
  c.vocab = f.Int("vocab_size");
  // Defaults of each Hugging Face config class, for keys a config.json leaves out.
  c.max_position = f.Int("max_position_embeddings", arch == Arch::kLlama    ? 2048
                                                    : arch == Arch::kPhi3   ? 4096
                                                    : arch == Arch::kGemma2 ? 8192
                                                    : arch == Arch::kGemma3 ? 131072
                                                                            : 32768);
  c.norm_eps = f.Float("rms_norm_eps", arch == Arch::kPhi3 ? 1e-5f : 1e-6f);
  c.rope_theta = f.Float("rope_theta", arch == Arch::kSmolLM3  ? 2e6f
                                       : arch == Arch::kGemma3 ? 1e6f
                                                               : 10000.0f);
  c.rope_pairing = RopePairing::kHalf;  // every HF architecture here uses rotate_half
  c.tie_embeddings = f.Bool("tie_word_embeddings", arch == Arch::kSmolLM3 || IsGemma(arch));
  // Qwen2 always has q/k/v biases (its config has no attention_bias field); Phi-3 never has.
  c.qkv_bias = arch == Arch::kQwen2  ? true
               : arch == Arch::kPhi3 ? false
                                     : f.Bool("attention_bias", false);
  c.qk_norm = arch == Arch::kQwen3;
  c.attn_output_gate = f.Bool("attn_output_gate", false);
  c.gated_norm_rank = f.Int("gated_norm_rank", 0);
  c.initializer_range = f.Float("initializer_range", 0.02f);
  Check(std::isfinite(c.initializer_range) && c.initializer_range >= 0,
        source + ": initializer_range must be a finite number >= 0, got " +
            std::to_string(c.initializer_range));
  c.bos_id = FirstTokenId(f, "bos_token_id");
  c.eos_id = FirstTokenId(f, "eos_token_id");
  ValidateConfig(c, source);  // the sizes first: the per-layer fields are sized by n_layers
  c.rotary_dim = ParseRotaryDim(f, arch, c.head_dim);
  c.rope_scaling = ParseRopeScaling(f, arch == Arch::kPhi3, c.max_position);  // sized by rotary_dim
  c.layer_nope = ParseNoRope(f, arch, c.n_layers);
  c.layer_window = ParseLayerWindows(f, arch, j, c.n_layers, c.layer_nope);
  ParseGemma(f, arch, j, c);
  ValidateConfig(c, source);
  return c;
}

ModelConfig ParseHfConfig(const std::string& config_json_path) {
  return HfConfigFromJson(ReadJsonFile(config_json_path), config_json_path);
}

nlohmann::ordered_json HfConfigToJson(const ModelConfig& c) {
  const std::string src = "writing config.json";
  const ArchInfo& info = FindArch(c.architecture, src);
  Check(c.rope_pairing == RopePairing::kHalf,
        src + ": adjacent RoPE pairing has no config.json form; permute q/k rows to "
              "rotate_half first (as `sinkquant convert` does)");
  const bool qk_arch = info.arch == Arch::kQwen3 || info.arch == Arch::kGemma3;
  Check(!c.qk_norm || qk_arch, src + ": qk_norm needs Qwen3ForCausalLM or Gemma3ForCausalLM");
  Check(c.qk_norm || !qk_arch, src + ": " + c.architecture + " implies qk_norm");
  const bool gemma = IsGemma(info.arch);
  Check(gemma ==
            (c.post_norms && c.norm_weight_offset && c.ffn_activation == FfnActivation::kGeluTanh),
        src +
            ": post-norms, (1 + w) norm weights and GeGLU go together with Gemma2ForCausalLM "
            "or Gemma3ForCausalLM");
  Check(gemma || (c.attn_softcap == 0 && c.final_softcap == 0 && c.query_pre_attn_scalar == 0 &&
                  c.embed_scale == 1.0f && c.rope_local_theta == 0),
        src +
            ": soft-capping, query_pre_attn_scalar, embedding scale and local RoPE theta need "
            "a Gemma architecture");
  Check(!gemma || c.embed_scale == static_cast<float>(std::sqrt(double(c.hidden))),
        src + ": Gemma scales embeddings by sqrt(hidden_size) only");
  Check(c.rope_local_theta == 0 || info.arch == Arch::kGemma3,
        src + ": rope_local_base_freq needs Gemma3ForCausalLM");
  Check(c.qkv_bias || info.arch != Arch::kQwen2, src + ": Qwen2ForCausalLM implies qkv_bias");
  Check(!c.qkv_bias || info.arch != Arch::kPhi3, src + ": Phi3ForCausalLM has no q/k/v biases");
  ValidateConfig(c, src);
  Check(c.rotary_dim == 0 || info.arch == Arch::kPhi3,
        src + ": partial rotary needs Phi3ForCausalLM");
  Check(c.layer_nope.empty() || info.arch == Arch::kSmolLM3,
        src + ": NoPE layers need SmolLM3ForCausalLM");
  nlohmann::ordered_json j;
  j["architectures"] = {c.architecture};
  j["model_type"] = info.model_type;
  j["hidden_size"] = c.hidden;
  j["intermediate_size"] = c.intermediate;
  j["num_hidden_layers"] = c.n_layers;
  j["num_attention_heads"] = c.n_heads;
  j["num_key_value_heads"] = c.n_kv_heads;
  j["head_dim"] = c.head_dim;
  j["vocab_size"] = c.vocab;
  j["max_position_embeddings"] = c.max_position;
  j["rms_norm_eps"] = JsonFloat(c.norm_eps);
  j["rope_theta"] = JsonFloat(c.rope_theta);
  if (c.rope_scaling.enabled) {
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", JsonFloat(c.rope_scaling.factor)},
                         {"low_freq_factor", JsonFloat(c.rope_scaling.low_freq_factor)},
                         {"high_freq_factor", JsonFloat(c.rope_scaling.high_freq_factor)},
                         {"original_max_position_embeddings", c.rope_scaling.original_max_position}};
  } else if (c.rope_scaling.longrope) {
    WriteLongRope(c.rope_scaling, j);
  } else if (c.rope_scaling.linear) {
    j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", JsonFloat(c.rope_scaling.factor)}};
  } else {
    j["rope_scaling"] = nullptr;
  }
  j["hidden_act"] = gemma ? "gelu_pytorch_tanh" : "silu";
  if (info.arch != Arch::kQwen2) j["attention_bias"] = c.qkv_bias;
  j["mlp_bias"] = false;
  j["tie_word_embeddings"] = c.tie_embeddings;
  j["initializer_range"] = JsonFloat(c.initializer_range);
  j["bos_token_id"] = c.bos_id >= 0 ? nlohmann::ordered_json(c.bos_id) : nullptr;
  j["eos_token_id"] = c.eos_id >= 0 ? nlohmann::ordered_json(c.eos_id) : nullptr;
  j["torch_dtype"] = "float32";
  j["attn_output_gate"] = c.attn_output_gate;
  j["gated_norm_rank"] = c.gated_norm_rank;
  WriteArchFields(c, info.arch, src, j);
  return j;
}

void WriteHfConfig(const std::string& path, const ModelConfig& c) {
  WriteFileAtomic(path, HfConfigToJson(c).dump(2) + "\n");
}

}  // namespace sq
