#include "formats/hf_config.h"

#include <cmath>
#include <limits>
#include <optional>

#include "core/atomic_file.h"
#include "core/error.h"

namespace sq {

namespace {

using nlohmann::json;

enum class Arch { kLlama, kMistral, kQwen2, kQwen3 };
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
};

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

RopeScaling ParseRopeScaling(const Fields& f) {
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
  Check(type == "llama3", f.source() + ": rope_scaling type '" + type +
                              "' is not supported (supported: llama3, or null)");
  Fields rf(r, f.source() + ": rope_scaling");
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

// Sliding-window attention is not implemented: accept configs where it never binds.
void CheckNoSlidingWindow(const Fields& f, Arch arch, int max_position) {
  if (arch == Arch::kQwen2 || arch == Arch::kQwen3) {
    if (!f.Bool("use_sliding_window", false)) return;
  }
  if (!f.Present("sliding_window")) return;
  const int w = f.Int("sliding_window");
  Check(w >= max_position, f.source() + ": sliding_window " + std::to_string(w) +
                               " < max_position_embeddings " + std::to_string(max_position) +
                               ": sliding-window attention is not supported");
}

}  // namespace

ModelConfig HfConfigFromJson(const json& j, const std::string& source) {
  Check(j.is_object(), source + ": config is not a JSON object");
  ModelConfig c;
  c.architecture = Architecture(j, source);
  const Arch arch = FindArch(c.architecture, source).arch;
  Fields f(j, source);
  if (f.Present("hidden_act")) {
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
  c.head_dim = f.Int("head_dim", c.hidden / c.n_heads);
  c.vocab = f.Int("vocab_size");
  c.max_position = f.Int("max_position_embeddings", arch == Arch::kLlama ? 2048 : 32768);
  c.norm_eps = f.Float("rms_norm_eps", 1e-6f);
  c.rope_theta = f.Float("rope_theta", 10000.0f);
  c.rope_pairing = RopePairing::kHalf;  // every HF architecture here uses rotate_half
  c.rope_scaling = ParseRopeScaling(f);
  c.tie_embeddings = f.Bool("tie_word_embeddings", false);
  // Qwen2 always has q/k/v biases (its config has no attention_bias field).
  c.qkv_bias = arch == Arch::kQwen2 ? true : f.Bool("attention_bias", false);
  c.qk_norm = arch == Arch::kQwen3;
  c.attn_output_gate = f.Bool("attn_output_gate", false);
  c.gated_norm_rank = f.Int("gated_norm_rank", 0);
  c.initializer_range = f.Float("initializer_range", 0.02f);
  Check(std::isfinite(c.initializer_range) && c.initializer_range >= 0,
        source + ": initializer_range must be a finite number >= 0, got " +
            std::to_string(c.initializer_range));
  c.bos_id = FirstTokenId(f, "bos_token_id");
  c.eos_id = FirstTokenId(f, "eos_token_id");
  CheckNoSlidingWindow(f, arch, c.max_position);
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
  Check(!c.qk_norm || info.arch == Arch::kQwen3, src + ": qk_norm needs Qwen3ForCausalLM");
  Check(c.qk_norm || info.arch != Arch::kQwen3, src + ": Qwen3ForCausalLM implies qk_norm");
  Check(c.qkv_bias || info.arch != Arch::kQwen2, src + ": Qwen2ForCausalLM implies qkv_bias");
  ValidateConfig(c, src);
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
  } else {
    j["rope_scaling"] = nullptr;
  }
  j["hidden_act"] = "silu";
  if (info.arch != Arch::kQwen2) j["attention_bias"] = c.qkv_bias;
  j["mlp_bias"] = false;
  j["tie_word_embeddings"] = c.tie_embeddings;
  j["initializer_range"] = JsonFloat(c.initializer_range);
  j["bos_token_id"] = c.bos_id >= 0 ? nlohmann::ordered_json(c.bos_id) : nullptr;
  j["eos_token_id"] = c.eos_id >= 0 ? nlohmann::ordered_json(c.eos_id) : nullptr;
  j["torch_dtype"] = "float32";
  j["attn_output_gate"] = c.attn_output_gate;
  j["gated_norm_rank"] = c.gated_norm_rank;
  return j;
}

void WriteHfConfig(const std::string& path, const ModelConfig& c) {
  WriteFileAtomic(path, HfConfigToJson(c).dump(2) + "\n");
}

}  // namespace sq
