#include "formats/checkpoint.h"

#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "core/error.h"
#include "formats/hf_config.h"
#include "formats/hf_names.h"
#include "formats/json_util.h"
#include "formats/llama2c.h"
#include "formats/safetensors.h"

namespace sq {

namespace fs = std::filesystem;

namespace {

// Which config switch makes a role legitimate, for tensors present without it.
const char* EnabledBy(const ModelConfig& c, Role r) {
  switch (r) {
    case Role::kAttnQBias: case Role::kAttnKBias: case Role::kAttnVBias:
      return c.qkv_bias ? nullptr : "attention_bias";
    case Role::kAttnQNorm: case Role::kAttnKNorm:
      return c.qk_norm ? nullptr : "Qwen3ForCausalLM (qk_norm)";
    case Role::kAttnPostNorm:
    case Role::kFfnPostNorm:
      return c.post_norms ? nullptr : "Gemma's post-norms";
    case Role::kAttnNormGateDown: case Role::kAttnNormGateUp: case Role::kFfnNormGateDown:
    case Role::kFfnNormGateUp: case Role::kFinalNormGateDown: case Role::kFinalNormGateUp:
      return c.gated_norm_rank > 0 ? nullptr : "gated_norm_rank";
    default:
      return nullptr;
  }
}

// Phi-3's fused qkv_proj / gate_up_proj: each part is a row slice of the stored tensor (a view,
// no copy), in the row order of HfFusedTensors.
bool AssignFused(const ModelConfig& c, const std::string& name, const TensorView& v,
                 const std::string& file, ModelWeights* w) {
  const auto fused = ParseHfFusedName(name);
  if (!fused) return false;
  const auto [layer, f] = *fused;
  Check(HfFusesProjections(c), file + ": tensor " + name + " is fused (the Phi-3 layout) but " +
                                   "config.json names " + c.architecture);
  Check(layer < c.n_layers, file + ": tensor " + name + " is for layer " + std::to_string(layer) +
                                " but config.json has " + std::to_string(c.n_layers) + " layers");
  int64_t rows = 0;
  for (Role r : f->parts) rows += ExpectedShape(c, r)[0];
  Check(v.shape == std::vector<int64_t>{rows, c.hidden},
        file + ": tensor " + name + " has shape " + v.ShapeString() + ", config.json implies [" +
            std::to_string(rows) + ", " + std::to_string(c.hidden) + "]");
  int64_t at = 0;
  for (Role r : f->parts) {
    TensorView part = v;
    part.shape = ExpectedShape(c, r);
    part.data = v.data + static_cast<size_t>(at * v.cols()) * DTypeSize(v.dtype);
    at += part.shape[0];
    WeightSlot(*w, {layer, r}) = part;
  }
  return true;
}

// Puts every tensor sinkquant knows into its slot; unknown names are ignored, but a known
// tensor the config does not enable is refused (it would otherwise be silently dropped).
void AssignTensor(const ModelConfig& c, const std::string& name, const TensorView& v,
                  const std::string& file, ModelWeights* w) {
  if (AssignFused(c, name, v, file, w)) return;
  auto id = ParseHfTensorName(name, c);
  if (!id) return;
  if (HfFusesProjections(c)) {
    for (const HfFusedTensor& f : HfFusedTensors()) {
      for (Role r : f.parts) {
        Check(id->role != r,
              file + ": tensor " + name + ": " + c.architecture + " stores it inside " + f.suffix);
      }
    }
  }
  Check(id->layer < c.n_layers, file + ": tensor " + name + " is for layer " +
                                    std::to_string(id->layer) + " but config.json has " +
                                    std::to_string(c.n_layers) + " layers");
  if (const char* by = EnabledBy(c, id->role)) {
    throw Error(file + ": tensor " + name + " is present but config.json does not enable " + by);
  }
  WeightSlot(*w, *id) = v;
}

// With tie_word_embeddings Hugging Face uses the embedding as the head and ignores a stored
// lm_head.weight: accept one only when it is a byte-identical copy, never silently drop it.
void CheckTiedHead(const ModelConfig& c, const ModelWeights& w, const std::string& source) {
  if (!c.tie_embeddings || w.lm_head.empty() || w.embed.empty()) return;
  const bool same = w.lm_head.dtype == w.embed.dtype && w.lm_head.shape == w.embed.shape &&
                    w.lm_head.nbytes() == w.embed.nbytes() &&
                    std::memcmp(w.lm_head.data, w.embed.data, w.embed.nbytes()) == 0;
  Check(same, source + ": tensor lm_head.weight differs from model.embed_tokens.weight but "
                       "config.json sets tie_word_embeddings true (it would be ignored)");
}

// Gemma stores each RMSNorm weight as an offset from 1: adds `delta` to every norm weight (+1
// after loading, so the engine sees the scale; -1 before writing), as owned F32 tensors. The
// sum is taken in float, as Hugging Face's (1.0 + self.weight.float()).
void ShiftNormWeights(const ModelConfig& c, ModelWeights& w, float delta) {
  ForEachTensor(c, w, [&](TensorId id, TensorView& v) {
    if (IsNormRole(id.role)) v = w.Own((ToMat(v).array() + delta).matrix(), v.shape);
  });
}

// Shard file names from model.safetensors.index.json, with the tensors each should hold.
std::map<std::string, std::set<std::string>> ReadIndex(const std::string& index_path) {
  const auto j = ReadJsonFile(index_path);
  Check(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(),
        index_path + ": missing object 'weight_map'");
  std::map<std::string, std::set<std::string>> shards;
  for (const auto& [name, file] : j["weight_map"].items()) {
    Check(file.is_string(), index_path + ": weight_map entry for " + name + " is not a string");
    const std::string f = file.get<std::string>();
    Check(!f.empty() && f.find('/') == std::string::npos && f != "..",
          index_path + ": weight_map file '" + f + "' for " + name +
              " must be a plain file name in the same folder");
    shards[f].insert(name);
  }
  return shards;
}

void LoadHfWeights(const std::string& dir, const ModelConfig& c, Checkpoint* ck) {
  ModelWeights& w = ck->weights;
  w.layers.resize(c.n_layers);
  const fs::path single = fs::path(dir) / "model.safetensors";
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  std::string source;
  if (fs::exists(single)) {
    source = single.string();
    SafetensorsFile st = OpenSafetensors(source);
    for (const auto& [name, v] : st.tensors) AssignTensor(c, name, v, source, &w);
    w.storage.push_back(st.file);
  } else if (fs::exists(index)) {
    source = index.string();
    for (const auto& [shard, names] : ReadIndex(source)) {
      const std::string shard_path = (fs::path(dir) / shard).string();
      SafetensorsFile st = OpenSafetensors(shard_path);
      for (const std::string& name : names) {
        auto it = st.tensors.find(name);
        Check(it != st.tensors.end(), shard_path + ": tensor " + name +
                                          " listed in model.safetensors.index.json is missing");
        AssignTensor(c, name, it->second, shard_path, &w);
      }
      w.storage.push_back(st.file);
    }
  } else {
    throw Error(dir + ": no model.safetensors or model.safetensors.index.json");
  }
  CheckTiedHead(c, w, source);
  if (c.tie_embeddings) w.lm_head = w.embed;
  ValidateWeights(c, w, source, [&](TensorId id) { return HfTensorName(id, c); });
  if (c.norm_weight_offset) ShiftNormWeights(c, w, 1.0f);
}

Checkpoint LoadHfDir(const std::string& dir) {
  Checkpoint ck;
  ck.source = dir;
  const fs::path config = fs::path(dir) / "config.json";
  Check(fs::exists(config), dir + ": no config.json (expected an HF model folder or a llama2.c "
                                  ".bin file)");
  ck.config = ParseHfConfig(config.string());
  LoadHfWeights(dir, ck.config, &ck);
  const fs::path tok = fs::path(dir) / "tokenizer.json";
  if (fs::is_regular_file(tok)) ck.tokenizer_path = tok.string();
  return ck;
}

}  // namespace

Checkpoint LoadCheckpoint(const std::string& path) {
  Check(fs::exists(path), "checkpoint " + path + " does not exist");
  if (fs::is_directory(path)) return LoadHfDir(path);
  const fs::path p(path);
  if (p.filename() == "config.json" || p.extension() == ".safetensors" ||
      p.filename() == "model.safetensors.index.json") {
    return LoadHfDir(p.parent_path().empty() ? "." : p.parent_path().string());
  }
  Checkpoint ck;
  ck.source = path;
  LoadLlama2c(path, &ck.config, &ck.weights);
  ck.tokenizer_path = FindLlama2cTokenizer(path, ck.config.vocab);
  return ck;
}

namespace {

// Phi-3 files hold q/k/v and gate/up fused: the parts' rows stacked under the fused name.
void FuseForWrite(const ModelConfig& c, ModelWeights w,
                  std::vector<std::shared_ptr<OwnedTensor>>& owned,
                  std::vector<std::pair<std::string, TensorView>>& tensors) {
  std::set<std::string> parts;
  for (int l = 0; l < c.n_layers; ++l) {
    for (const HfFusedTensor& f : HfFusedTensors()) {
      std::vector<Mat> mats;
      int64_t rows = 0;
      for (Role r : f.parts) {
        mats.push_back(ToMat(WeightSlot(w, {l, r})));
        rows += mats.back().rows();
        parts.insert(HfTensorName({l, r}, c));
      }
      Mat all(rows, c.hidden);
      int64_t at = 0;
      for (const Mat& m : mats) {
        all.middleRows(at, m.rows()) = m;
        at += m.rows();
      }
      owned.push_back(MakeOwned(std::move(all), {rows, c.hidden}));
      tensors.emplace_back(HfFusedName(l, f), owned.back()->View());
    }
  }
  std::erase_if(tensors, [&](const auto& t) { return parts.count(t.first) > 0; });
}

}  // namespace

void WriteHfCheckpoint(const std::string& dir, const ModelConfig& c, const ModelWeights& in) {
  ValidateWeights(c, in, "writing " + dir, [&](TensorId id) { return HfTensorName(id, c); });
  ModelWeights w = in;  // shares the storage; only shifted norms are new
  if (c.norm_weight_offset) ShiftNormWeights(c, w, -1.0f);
  std::error_code ec;
  fs::create_directories(dir, ec);
  Check(!ec && fs::is_directory(dir), "cannot create folder " + dir + ": " + ec.message());
  // Stored tensors may be F16/BF16 or views of owned buffers; convert each to F32 first.
  std::vector<std::shared_ptr<OwnedTensor>> owned;
  std::vector<std::pair<std::string, TensorView>> tensors;
  ForEachTensor(c, w, [&](TensorId id, const TensorView& v) {
    if (v.dtype == DType::kF32) {
      tensors.emplace_back(HfTensorName(id, c), v);
      return;
    }
    owned.push_back(MakeOwned(ToMat(v), v.shape));
    tensors.emplace_back(HfTensorName(id, c), owned.back()->View());
  });  // skip_tied: a tied lm_head is not stored
  if (HfFusesProjections(c)) FuseForWrite(c, w, owned, tensors);
  WriteSafetensors((fs::path(dir) / "model.safetensors").string(), tensors, {{"format", "pt"}});
  WriteHfConfig((fs::path(dir) / "config.json").string(), c);
}

}  // namespace sq
