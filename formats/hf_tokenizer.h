// The Hugging Face tokenizer.json reader: added tokens, normalizer, pre-tokenizer, model (BPE
// here, Unigram and WordPiece in formats/tokenizer_models.h), post-processor and decoder, with
// the semantics of the `tokenizers` Rust crate 0.22.
// Entry point: LoadHfTokenizer() in formats/tokenizer.h. The BPE model is exposed for tests.
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "formats/tokenizer_models.h"

namespace sq {

// The "model" object of a tokenizer.json whose type is BPE.
class HfBpeModel : public TokenModel {
 public:
  explicit HfBpeModel(const nlohmann::json& model);  // throws Error on bad vocab/merges

  void Tokenize(std::string_view word, std::vector<int>& out) const override;
  int TokenId(const std::string& token) const override { return vocab_.Id(token); }
  const std::string* TokenString(int id) const override { return vocab_.Token(id); }
  int max_id() const override { return vocab_.max_id(); }

 private:
  void MergeWord(std::string_view word, std::vector<int>& ids) const;

  VocabTable vocab_;
  std::unordered_map<uint64_t, std::pair<int, int>> merges_;  // (left, right) -> (rank, merged)
  int unk_id_ = -1;
  bool fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;
  std::string prefix_, suffix_;  // continuing_subword_prefix, end_of_word_suffix
  std::vector<int> byte_ids_;    // "<0xXX>" ids for byte fallback, -1 if absent

  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int>> cache_;
};

}  // namespace sq
