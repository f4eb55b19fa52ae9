// sinkquant random-model: a checkpoint with a real config.json's shapes and random weights,
// for benchmarks on shapes we cannot download (Qwen3-0.6B, Llama-3.2-1B, ...).
#include <cstdio>
#include <filesystem>

#include "cli/command.h"
#include "core/error.h"
#include "core/numeric.h"
#include "formats/hf_config.h"
#include "formats/hf_names.h"
#include "formats/safetensors.h"
#include "model/random_weights.h"

namespace sq {
namespace {

// Narrows an F32 view to `dtype` into `store` (kept alive by the caller) and returns the view.
TensorView Narrow(const TensorView& v, DType dtype, std::vector<std::vector<uint16_t>>& store) {
  if (dtype == DType::kF32) return v;
  const Vec x = ToVec(v);
  std::vector<uint16_t> out(x.size());
  for (Eigen::Index i = 0; i < x.size(); ++i) {
    out[i] = dtype == DType::kBF16 ? FloatToBf16(x[i]) : FloatToF16(x[i]);
  }
  store.push_back(std::move(out));
  TensorView n = v;
  n.dtype = dtype;
  n.data = reinterpret_cast<const std::byte*>(store.back().data());
  return n;
}

int RunRandomModel(Args& a) {
  const std::string config_path = a.Required("config");
  const std::string dtype_name = a.Str("dtype", "bf16");
  const std::string out = a.Required("out");
  const int layers = a.Int("layers", 0, 0, 1024);
  const int seed = SeedFlag(a);
  a.Finish();
  DType dtype;
  std::string upper = dtype_name;
  for (char& ch : upper) ch = static_cast<char>(std::toupper(ch));
  Check(ParseDType(upper, &dtype) &&
            (dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16),
        "--dtype must be f32, f16 or bf16, got '" + dtype_name + "'");

  ModelConfig c = ParseHfConfig(config_path);
  if (layers > 0) c.n_layers = layers;  // a shallower model with the same shapes
  const ModelWeights w = RandomWeights(c, static_cast<uint64_t>(seed));
  std::vector<std::vector<uint16_t>> store;
  store.reserve(4 + 32 * c.n_layers);
  std::vector<std::pair<std::string, TensorView>> tensors;
  ForEachTensor(c, w, [&](TensorId id, const TensorView& v) {
    tensors.emplace_back(HfTensorName(id), Narrow(v, dtype, store));
  });
  std::filesystem::create_directories(out);
  WriteSafetensors(out + "/model.safetensors", tensors, {{"format", "pt"}});
  WriteHfConfig(out + "/config.json", c);
  std::printf("wrote %s: %s, %d layers, %zu tensors, %s\n", out.c_str(), c.architecture.c_str(),
              c.n_layers, tensors.size(), DTypeName(dtype));
  return 0;
}

const bool kRegistered = RegisterCommand(
    {"random-model", "write a random-weight checkpoint with a config.json's shapes (benchmarks)",
     "--config config.json --out DIR [--dtype bf16|f16|f32] [--layers N] [--seed S]",
     RunRandomModel});

}  // namespace
}  // namespace sq
