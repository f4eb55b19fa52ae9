// The "model" stage of a Hugging Face tokenizer.json: one pre-tokenized word in, token ids out.
// BPE lives in formats/hf_tokenizer.h; Unigram, WordPiece and WordLevel here, each following the
// `tokenizers` Rust crate 0.22.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace sq {

class TokenModel {
 public:
  virtual ~TokenModel() = default;
  // Appends the ids of one pre-tokenized word; throws Error when the model cannot encode it.
  virtual void Tokenize(std::string_view word, std::vector<int>& out) const = 0;
  virtual int TokenId(const std::string& token) const = 0;  // -1 if absent
  virtual const std::string* TokenString(int id) const = 0;  // nullptr if absent
  virtual int max_id() const = 0;
};

// BPE, Unigram, WordPiece or WordLevel by the "type" key (guessed from the fields when absent,
// as the crate does); throws Error naming an unsupported type.
std::unique_ptr<TokenModel> MakeTokenModel(const nlohmann::json& model);

// A token <-> id table from a {"token": id} object. Ids may have gaps but must stay below
// entries + 65536, so a file claiming id 1000000000 is refused instead of allocating for it.
class VocabTable {
 public:
  VocabTable() = default;
  explicit VocabTable(const nlohmann::json& vocab);
  void Add(const std::string& token, int id);  // a later duplicate token wins
  int Id(const std::string& token) const;
  const std::string* Token(int id) const;
  int max_id() const { return static_cast<int>(by_id_.size()) - 1; }

 private:
  std::unordered_map<std::string, int> by_token_;
  std::vector<std::string> by_id_;
  std::vector<bool> present_;
};

// The "<0xXX>" ids of a vocabulary (byte fallback), -1 where a byte has none.
std::vector<int> ByteFallbackIds(const TokenModel& model);

// Unigram (SentencePiece's unigram LM): the Viterbi segmentation that maximises the summed
// piece scores; characters no piece covers score min_score - 10 as the unknown piece, adjacent
// unknowns fuse, and a fused unknown becomes its "<0xXX>" bytes when byte_fallback is set.
class HfUnigramModel : public TokenModel {
 public:
  explicit HfUnigramModel(const nlohmann::json& model);
  void Tokenize(std::string_view word, std::vector<int>& out) const override;
  int TokenId(const std::string& token) const override;
  const std::string* TokenString(int id) const override;
  int max_id() const override { return static_cast<int>(pieces_.size()) - 1; }

 private:
  std::vector<std::string> Segment(std::string_view word) const;

  std::vector<std::pair<std::string, double>> pieces_;
  std::unordered_map<std::string, int> ids_;
  size_t max_piece_bytes_ = 0;
  double min_score_ = 0;
  int unk_id_ = -1;
  bool byte_fallback_ = false;
  std::vector<int> byte_ids_;
};

// WordPiece (BERT): greedy longest match from the left, pieces after the first carry the
// continuing_subword_prefix; a word longer than max_input_chars_per_word characters, or one
// with an uncoverable rest, becomes the single unk_token.
class HfWordPieceModel : public TokenModel {
 public:
  explicit HfWordPieceModel(const nlohmann::json& model);
  void Tokenize(std::string_view word, std::vector<int>& out) const override;
  int TokenId(const std::string& token) const override { return vocab_.Id(token); }
  const std::string* TokenString(int id) const override { return vocab_.Token(id); }
  int max_id() const override { return vocab_.max_id(); }

 private:
  int UnkId() const;

  VocabTable vocab_;
  std::string unk_token_, prefix_;
  size_t max_chars_ = 100;
  size_t max_token_bytes_ = 0;  // the longest vocab entry
};

// WordLevel: the whole word is one token, or unk_token.
class HfWordLevelModel : public TokenModel {
 public:
  explicit HfWordLevelModel(const nlohmann::json& model);
  void Tokenize(std::string_view word, std::vector<int>& out) const override;
  int TokenId(const std::string& token) const override { return vocab_.Id(token); }
  const std::string* TokenString(int id) const override { return vocab_.Token(id); }
  int max_id() const override { return vocab_.max_id(); }

 private:
  VocabTable vocab_;
  std::string unk_token_;
};

}  // namespace sq
