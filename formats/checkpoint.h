// Checkpoints as a whole: find the format of PATH, load config + weights, or write an HF dir.
#pragma once

#include <string>

#include "core/model_config.h"
#include "core/model_weights.h"

namespace sq {

struct Checkpoint {
  ModelConfig config;
  ModelWeights weights;       // views into memory-mapped files (owned by weights.storage)
  std::string tokenizer_path; // tokenizer.json (HF) or tok<V>.bin / tokenizer.bin; "" if none
  std::string source;         // what was loaded, for messages: the dir or .bin path
};

// PATH: an HF directory (config.json + model.safetensors, or model.safetensors.index.json with
// shards), a file inside one (config.json / *.safetensors), or a llama2.c .bin file.
// Throws Error naming the file and tensor on any problem.
Checkpoint LoadCheckpoint(const std::string& path);

// Writes config.json + model.safetensors (all tensors F32, a tied lm_head stored once as the
// embedding) into `dir`, creating it if needed. Each file goes through temp + rename.
void WriteHfCheckpoint(const std::string& dir, const ModelConfig& c, const ModelWeights& w);

}  // namespace sq
