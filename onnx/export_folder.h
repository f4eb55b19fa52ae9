// A deployable export: the folder a consumer loads offline (ONNX Runtime, transformers.js,
// Optimum's ORTModelForCausalLM):
//   onnx/model.onnx (+ onnx/model.onnx_data)  the decoder-layout graph (external data named as
//                                             transformers.js looks for it)
//   config.json                               what a loader needs to drive the graph: layer,
//                                             head and KV-cache sizes, bos/eos ids
//   generation_config.json                    bos/eos ids, max_length = the RoPE table's length
//   tokenizer.json, tokenizer_config.json     copied from the checkpoint, or converted from its
//                                             llama2.c tokenizer
//   quantization.json                         the recipe's settings and what was measured
// Everything is written into a temporary sibling folder renamed into place at the end: a failed
// export leaves nothing at `dir`. An existing `dir` is refused (nothing is ever replaced).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "onnx/export.h"

namespace sq {

struct OnnxFolderContents {
  // tokenizer.json (tokenizer_config.json and special_tokens_map.json beside it are copied too)
  // or a llama2.c tokenizer .bin (converted as `sinkquant convert` does).
  std::string tokenizer_path;
  nlohmann::ordered_json quantization;  // written as quantization.json
};

// Throws Error naming `dir` when it exists (checked before any work and again at the end).
void CheckNewExportFolder(const std::string& dir);

// Writes the folder; `opt.layout` must be kDecoder (the layout loaders drive).
OnnxExportReport ExportOnnxFolder(const Model& m, const std::string& dir,
                                  const OnnxExportOptions& opt, const OnnxFolderContents& contents);

}  // namespace sq
