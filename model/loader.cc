#include "model/loader.h"

#include "core/error.h"
#include "formats/checkpoint.h"

namespace sq {

LoadedModel LoadModel(const std::string& model_path, const std::string& tokenizer_path) {
  Checkpoint ck = LoadCheckpoint(model_path);
  LoadedModel out;
  out.model_path = model_path;
  out.tokenizer_path = tokenizer_path.empty() ? ck.tokenizer_path : tokenizer_path;
  Check(!out.tokenizer_path.empty(),
        model_path + ": no tokenizer found beside the checkpoint; pass --tokenizer PATH");
  out.tokenizer = LoadTokenizer(out.tokenizer_path, ck.config.vocab);
  Check(out.tokenizer->vocab_size() <= ck.config.vocab,
        out.tokenizer_path + ": tokenizer has " + std::to_string(out.tokenizer->vocab_size()) +
            " tokens but the model's vocab_size is " + std::to_string(ck.config.vocab));
  out.model = BuildDenseModel(ck.config, std::move(ck.weights));
  return out;
}

}  // namespace sq
