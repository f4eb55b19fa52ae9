// Loading a runnable model and its tokenizer from what a user names on the command line.
#pragma once

#include <memory>
#include <string>

#include "formats/tokenizer.h"
#include "model/model.h"

namespace sq {

struct LoadedModel {
  Model model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::string model_path;
  std::string tokenizer_path;
};

// `model_path`: an HF directory or a llama2.c .bin. `tokenizer_path`: empty to use the one
// that comes with the checkpoint (tokenizer.json in the directory, tokenizer.bin / tok<V>.bin
// beside a .bin); throws Error naming what is missing.
LoadedModel LoadModel(const std::string& model_path, const std::string& tokenizer_path);

}  // namespace sq
