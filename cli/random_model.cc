// sinkquant random-model: a checkpoint with a real config.json's shapes and random weights at a
// trained model's scale, for benchmarks on shapes we cannot download (Llama-3.1-8B, ...).
// Written tensor by tensor and chunk by chunk, so memory stays at one chunk whatever the model
// size; sharded and indexed as Hugging Face saves a model; atomically, as one folder rename.

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>

#include "cli/command.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/numeric.h"
#include "core/progress.h"
#include "core/threads.h"
#include "formats/hf_config.h"
#include "formats/hf_names.h"
#include "formats/safetensors.h"
#include "model/random_weights.h"

namespace sq {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kChunk = int64_t{1} << 22;  // elements generated and narrowed at a time

std::string Upper(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return s;
}

// "5GB", "500MB", "2GiB", "123456" (bytes). Decimal units as Hugging Face's max_shard_size.
uint64_t ParseByteSize(const std::string& flag, const std::string& text) {
  static const std::map<std::string, double> kUnits = {
      {"", 1},        {"B", 1},         {"KB", 1e3},      {"MB", 1e6},     {"GB", 1e9},
      {"TB", 1e12},   {"KIB", 1024.0},  {"MIB", 1 << 20}, {"GIB", 1 << 30}};
  size_t end = 0;
  double value = -1;
  try {
    value = std::stod(text, &end);
  } catch (const std::exception&) {
  }
  const auto it = kUnits.find(Upper(text.substr(std::min(end, text.size()))));
  const double bytes = it == kUnits.end() ? -1 : value * it->second;
  Check(std::isfinite(bytes) && bytes >= 1 && bytes < 1e18,
        "--" + flag + " must be a positive size such as 5GB, 500MB, 2GiB or a byte count, got '" +
            text + "'");
  return static_cast<uint64_t>(bytes);
}

struct Plan {
  std::vector<RandomTensor> tensors;
  std::vector<TensorSpec> specs;  // the same tensors, by name and stored dtype
};

// Phi-3 stores q/k/v and gate/up fused: the first part grows to the fused rows (every part is
// drawn from the same distribution) and takes the fused name; the other parts are dropped.
void FuseParts(const ModelConfig& c, Plan& p) {
  if (!HfFusesProjections(c)) return;
  std::vector<bool> dropped(p.tensors.size(), false);
  auto find = [&](int layer, Role r) {
    for (size_t i = 0; i < p.tensors.size(); ++i) {
      if (p.tensors[i].id.layer == layer && p.tensors[i].id.role == r) return i;
    }
    throw Error("random-model: no tensor " + std::string(RoleName(r)));
  };
  for (int l = 0; l < c.n_layers; ++l) {
    for (const HfFusedTensor& f : HfFusedTensors()) {
      const size_t first = find(l, f.parts[0]);
      for (size_t k = 1; k < f.parts.size(); ++k) {
        const size_t i = find(l, f.parts[k]);
        p.tensors[first].shape[0] += p.tensors[i].shape[0];
        dropped[i] = true;
      }
      p.specs[first].name = HfFusedName(l, f);
      p.specs[first].shape = p.tensors[first].shape;
    }
  }
  for (size_t i = p.tensors.size(); i-- > 0;) {
    if (!dropped[i]) continue;
    p.tensors.erase(p.tensors.begin() + static_cast<std::ptrdiff_t>(i));
    p.specs.erase(p.specs.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

Plan MakePlan(const ModelConfig& c, DType dtype) {
  Plan p;
  p.tensors = RandomCheckpointTensors(c);
  for (const RandomTensor& t : p.tensors)
    p.specs.push_back({HfTensorName(t.id, c), dtype, t.shape});
  FuseParts(c, p);
  return p;
}

// Hugging Face's split: tensors in order, a new shard when the next one would pass the limit
// (a tensor larger than the limit gets a shard of its own).
std::vector<std::vector<size_t>> SplitShards(const std::vector<TensorSpec>& specs, uint64_t max) {
  std::vector<std::vector<size_t>> shards(1);
  uint64_t size = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    if (!shards.back().empty() && size + specs[i].nbytes() > max) {
      shards.emplace_back();
      size = 0;
    }
    shards.back().push_back(i);
    size += specs[i].nbytes();
  }
  return shards;
}

std::string ShardName(size_t i, size_t n) {
  if (n == 1) return "model.safetensors";
  char name[64];
  std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", i + 1, n);
  return name;
}

// Generates tensor `t` chunk by chunk, narrows each chunk to `dtype` and writes it.
void StreamTensor(const RandomTensor& t, uint64_t key, DType dtype, std::ostream& out) {
  const int64_t n = t.numel();
  std::vector<float> values(std::min(n, kChunk));
  std::vector<uint16_t> halves(dtype == DType::kF32 ? 0 : values.size());
  for (int64_t begin = 0; begin < n; begin += kChunk) {
    const int64_t len = std::min(kChunk, n - begin);
    FillRandomTensor(t, key, begin, len, values.data());
    const char* bytes = reinterpret_cast<const char*>(values.data());
    if (dtype != DType::kF32) {
      for (int64_t i = 0; i < len; ++i) {
        halves[i] = dtype == DType::kBF16 ? FloatToBf16(values[i]) : FloatToF16(values[i]);
      }
      bytes = reinterpret_cast<const char*>(halves.data());
    }
    const uint64_t nbytes = static_cast<uint64_t>(len) * DTypeSize(dtype);
    out.write(bytes, static_cast<std::streamsize>(nbytes));
  }
}

void WriteIndex(const fs::path& dir, const Plan& p,
                const std::vector<std::vector<size_t>>& shards) {
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  std::map<std::string, std::string> sorted;  // Hugging Face lists the map sorted by name
  uint64_t total = 0;
  for (size_t s = 0; s < shards.size(); ++s) {
    for (size_t i : shards[s]) {
      sorted[p.specs[i].name] = ShardName(s, shards.size());
      total += p.specs[i].nbytes();
    }
  }
  for (const auto& [name, file] : sorted) weight_map[name] = file;
  nlohmann::ordered_json j;
  j["metadata"] = {{"total_size", total}};
  j["weight_map"] = weight_map;
  WriteFileAtomic((dir / "model.safetensors.index.json").string(), j.dump(2) + "\n");
}

void WriteCheckpoint(const fs::path& dir, const ModelConfig& c, const Plan& p, uint64_t seed,
                     uint64_t max_shard) {
  const auto shards = SplitShards(p.specs, max_shard);
  Progress progress("random-model", static_cast<int>(p.specs.size()), "tensor", "MB");
  progress.Step(0);
  double mb = 0;
  int written = 0;
  for (size_t s = 0; s < shards.size(); ++s) {
    std::vector<TensorSpec> specs;
    for (size_t i : shards[s]) specs.push_back(p.specs[i]);
    const fs::path path = dir / ShardName(s, shards.size());
    WriteSafetensorsStreaming(path.string(), specs, [&](size_t k, std::ostream& out) {
      const size_t i = shards[s][k];
      StreamTensor(p.tensors[i], RandomStreamKey(seed, p.specs[i].name), p.specs[i].dtype, out);
      mb += p.specs[i].nbytes() / 1e6;
      progress.Step(++written, mb);
    }, {{"format", "pt"}});
  }
  if (shards.size() > 1) WriteIndex(dir, p, shards);
  WriteHfConfig((dir / "config.json").string(), c);
}

// True when `inside` is `folder` or lies under it.
bool Contains(const fs::path& folder, const fs::path& inside) {
  const fs::path f = fs::weakly_canonical(folder), in = fs::weakly_canonical(inside);
  auto [fi, ii] = std::mismatch(f.begin(), f.end(), in.begin(), in.end());
  return fi == f.end();
}

// --out must be new, or with --force a previous model folder that holds no input.
void CheckTarget(const fs::path& out, bool force, const std::string& config_path) {
  if (!fs::exists(fs::symlink_status(out))) return;
  Check(force, out.string() + " already exists (pass --force to replace it)");
  Check(fs::is_directory(fs::symlink_status(out)) && fs::exists(out / "config.json"),
        out.string() + ": --force replaces only a model folder (one with a config.json), and " +
            "this is not one");
  Check(!Contains(out, config_path), out.string() + ": --force would delete the input " +
                                         config_path + "; write elsewhere");
  Check(!Contains(out, fs::current_path()),
        out.string() + ": --force would delete the current directory; write elsewhere");
}

// Moves the finished temp folder to `out`, replacing a previous one only once it is complete.
void Publish(const fs::path& tmp, const fs::path& out) {
  const fs::path old = tmp.string() + ".old";
  const bool replacing = fs::exists(fs::symlink_status(out));
  std::error_code ec;
  if (replacing) {
    fs::rename(out, old, ec);
    Check(!ec, out.string() + ": cannot move the previous folder aside: " + ec.message());
  }
  fs::rename(tmp, out, ec);
  if (ec) {
    const std::string why = ec.message();
    if (replacing) fs::rename(old, out, ec);  // put the previous model back
    throw Error(out.string() + ": cannot rename the finished folder into place: " + why);
  }
  if (replacing) fs::remove_all(old, ec);
}

DType ParseOutDType(const std::string& name) {
  DType dtype;
  Check(ParseDType(Upper(name), &dtype) &&
            (dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16),
        "--dtype must be f32, f16 or bf16, got '" + name + "'");
  return dtype;
}

// --config names a config.json or, like --model, a folder holding one.
std::string ConfigJsonPath(const std::string& flag_value) {
  if (!fs::is_directory(flag_value)) return flag_value;
  const fs::path inside = fs::path(flag_value) / "config.json";
  Check(fs::exists(inside), flag_value + ": --config is a folder without a config.json");
  return inside.string();
}

int RunRandomModel(Args& a) {
  const std::string config_path = ConfigJsonPath(a.Required("config"));
  const DType dtype = ParseOutDType(a.Str("dtype", "bf16"));
  fs::path out = fs::absolute(a.Required("out")).lexically_normal();
  if (!out.has_filename()) out = out.parent_path();  // "dir/" names dir
  const int layers = a.Int("layers", 0, 0, 1024);
  const int seed = SeedFlag(a);
  const uint64_t max_shard = ParseByteSize("max-shard-size", a.Str("max-shard-size", "5GB"));
  const bool force = a.Flag("force");
  SetNumThreads(ThreadsFlag(a));
  a.Finish();

  ModelConfig c = ParseHfConfig(config_path);
  if (layers > 0 && (!c.layer_window.empty() || !c.layer_nope.empty())) {
    Check(layers <= c.n_layers, "--layers " + std::to_string(layers) + " exceeds the " +
                                    std::to_string(c.n_layers) + " layers whose windows or NoPE " +
                                    config_path + " lists");
    c = SliceLayers(c, 0, layers);
  } else if (layers > 0) {
    c.n_layers = layers;  // a shallower model with the same shapes
  }
  CheckTarget(out, force, config_path);
  std::error_code ec;
  fs::create_directories(out.parent_path(), ec);
  Check(!ec, "cannot create folder " + out.parent_path().string() + ": " + ec.message());
  // Everything is written into a hidden folder beside --out and renamed into place at the end:
  // an interrupted run leaves nothing at --out.
  std::string hidden = out.filename().string() + ".tmp." + std::to_string(::getpid());
  hidden.insert(hidden.begin(), '.');
  const fs::path tmp = out.parent_path() / hidden;
  fs::create_directory(tmp, ec);
  Check(!ec, "cannot create folder " + tmp.string() + ": " + ec.message());
  const Plan plan = MakePlan(c, dtype);
  try {
    WriteCheckpoint(tmp, c, plan, static_cast<uint64_t>(seed), max_shard);
    Publish(tmp, out);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  const size_t shards = SplitShards(plan.specs, max_shard).size();
  std::printf("wrote %s: %s, %d layers, %zu tensors in %zu file%s, %s\n", out.c_str(),
              c.architecture.c_str(), c.n_layers, plan.specs.size(), shards,
              shards == 1 ? "" : "s", DTypeName(dtype));
  return 0;
}

const bool kRegistered = RegisterCommand(
    {"random-model",
     "write a random-weight checkpoint with a config.json's shapes (benchmarks)",
     "--config config.json|FOLDER --out DIR [--dtype bf16|f16|f32] [--layers N] [--seed S]\n"
     "  [--max-shard-size 5GB] [--force] [--threads N]\n"
     "  Weights ~ N(0, initializer_range), norms 1, biases 0; each value depends only on --seed\n"
     "  and the tensor's name (not on sharding). Above --max-shard-size, writes\n"
     "  model-0000i-of-0000n.safetensors + model.safetensors.index.json. An existing --out is\n"
     "  refused; --force replaces a previous model folder (never one holding an input).",
     RunRandomModel});

}  // namespace
}  // namespace sq
