// libFuzzer target: model.safetensors.index.json in an HF folder with a valid tiny config.json
// and one valid shard (model-00001-of-00001.safetensors holding nothing useful), loaded through
// LoadCheckpoint: shard names must stay inside the folder, missing shards and tensors are errors.
#include <cstdint>
#include <fstream>

#include "core/error.h"
#include "formats/checkpoint.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

const std::string& Dir() {
  static const std::string dir = [] {
    const std::string d = sq::fuzz::ScratchDir() + "/hf";
    std::filesystem::create_directories(d);
    WriteText(d + "/config.json", R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 8,
      "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
      "num_key_value_heads": 2, "vocab_size": 4, "max_position_embeddings": 16,
      "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": true})");
    // A one-tensor shard: header {"model.norm.weight": F32 [8]} then 32 bytes.
    const std::string header =
        R"({"model.norm.weight":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}})";
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(header.size() >> (8 * i));
    WriteText(d + "/model-00001-of-00001.safetensors", bytes + header + std::string(32, '\0'));
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& dir = Dir();
  WriteText(dir + "/model.safetensors.index.json",
            std::string(reinterpret_cast<const char*>(data), size));
  try {
    sq::LoadCheckpoint(dir);
  } catch (const sq::Error&) {
  }
  return 0;
}
