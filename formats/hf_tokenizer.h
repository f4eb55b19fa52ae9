// The Hugging Face tokenizer.json reader: added tokens, normalizer, pre-tokenizer, BPE model,
// post-processor and decoder, with the semantics of the `tokenizers` Rust crate 0.22.
// Entry point: LoadHfTokenizer() in formats/tokenizer.h. The BPE model is exposed for tests.
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace sq {

// The "model" object of a tokenizer.json whose type is BPE.
class HfBpeModel {
 public:
  explicit HfBpeModel(const nlohmann::json& model);  // throws Error on bad vocab/merges

  // Appends the ids of one pre-tokenized word.
  void Tokenize(std::string_view word, std::vector<int>& out) const;
  int TokenId(const std::string& token) const;  // -1 if absent
  const std::string* TokenString(int id) const;  // nullptr if absent
  int max_id() const { return static_cast<int>(id_to_token_.size()) - 1; }

 private:
  void MergeWord(std::string_view word, std::vector<int>& ids) const;

  std::unordered_map<std::string, int> vocab_;
  std::vector<std::string> id_to_token_;
  std::unordered_map<uint64_t, std::pair<int, int>> merges_;  // (left, right) -> (rank, merged)
  int unk_id_ = -1;
  bool fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;
  std::string prefix_, suffix_;  // continuing_subword_prefix, end_of_word_suffix
  int byte_ids_[256];            // "<0xXX>" ids for byte fallback, -1 if absent

  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int>> cache_;
};

}  // namespace sq
