#include "formats/tokenizer_models.h"

#include <cstdio>
#include <limits>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "formats/json_util.h"
#include "formats/unicode.h"

namespace sq {

using json = nlohmann::json;

namespace {

std::string StrOr(const json& j, const char* key, const std::string& def) {
  auto it = j.find(key);
  return (it == j.end() || it->is_null()) ? def : it->get<std::string>();
}

size_t Utf8Length(unsigned char lead) {
  return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

}  // namespace

// ---------------------------------------------------------------- VocabTable

VocabTable::VocabTable(const json& vocab) {
  if (!vocab.is_object()) throw Error("\"vocab\" is not an object of token: id");
  const size_t n = vocab.size();
  for (auto& [token, id_json] : vocab.items()) {
    const int id = JsonInt(id_json, "vocab entry \"" + token + "\" id");
    if (id < 0) throw Error("vocab entry \"" + token + "\" has negative id " + std::to_string(id));
    if (static_cast<size_t>(id) >= n + 65536) {
      throw Error("vocab entry \"" + token + "\" has id " + std::to_string(id) + " but the vocab has " +
                  std::to_string(n) + " entries (ids must stay below entries + 65536)");
    }
    Add(token, id);
  }
}

void VocabTable::Add(const std::string& token, int id) {
  by_token_[token] = id;
  if (id >= static_cast<int>(by_id_.size())) {
    by_id_.resize(id + 1);
    present_.resize(id + 1, false);
  }
  by_id_[id] = token;
  present_[id] = true;
}

int VocabTable::Id(const std::string& token) const {
  auto it = by_token_.find(token);
  return it == by_token_.end() ? -1 : it->second;
}

const std::string* VocabTable::Token(int id) const {
  if (id < 0 || id >= static_cast<int>(by_id_.size()) || !present_[id]) return nullptr;
  return &by_id_[id];
}

std::vector<int> ByteFallbackIds(const TokenModel& model) {
  std::vector<int> ids(256);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    ids[b] = model.TokenId(name);
  }
  return ids;
}

// ---------------------------------------------------------------- Unigram

HfUnigramModel::HfUnigramModel(const json& m) {
  const json& vocab = m.at("vocab");
  if (!vocab.is_array()) throw Error("Unigram \"vocab\" is not an array of [piece, score]");
  min_score_ = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < vocab.size(); ++i) {
    const json& e = vocab[i];
    if (!e.is_array() || e.size() != 2 || !e[0].is_string() || !e[1].is_number()) {
      throw Error("Unigram vocab entry " + std::to_string(i) + " is not [piece, score]: " + e.dump().substr(0, 80));
    }
    pieces_.emplace_back(e[0].get<std::string>(), e[1].get<double>());
    unicode::CheckUtf8(pieces_.back().first, "Unigram vocab entry " + std::to_string(i));
    ids_[pieces_.back().first] = static_cast<int>(i);  // a later duplicate wins, as in the crate
    max_piece_bytes_ = std::max(max_piece_bytes_, pieces_.back().first.size());
    min_score_ = std::min(min_score_, pieces_.back().second);
  }
  if (m.contains("unk_id") && !m["unk_id"].is_null()) {
    unk_id_ = JsonInt(m["unk_id"], "Unigram unk_id");
    if (unk_id_ < 0 || unk_id_ >= static_cast<int>(pieces_.size())) {
      throw Error("Unigram unk_id " + std::to_string(unk_id_) + " is not below the vocab size " +
                  std::to_string(pieces_.size()));
    }
  }
  byte_fallback_ = m.value("byte_fallback", false);
  byte_ids_ = ByteFallbackIds(*this);
}

int HfUnigramModel::TokenId(const std::string& token) const {
  auto it = ids_.find(token);
  return it == ids_.end() ? -1 : it->second;
}

const std::string* HfUnigramModel::TokenString(int id) const {
  return (id < 0 || id > max_id()) ? nullptr : &pieces_[id].first;
}

// The crate's encode_optimized (sentencepiece's Viterbi): best[end] holds the best path ending
// at byte `end`; candidates come from each character start in order of increasing length and
// a later candidate replaces an earlier one only when strictly better.
std::vector<std::string> HfUnigramModel::Segment(std::string_view w) const {
  struct Node {
    int id = -1;
    double score = 0;
    long start = -1;  // -1: unreached
  };
  const double unk_score = min_score_ - 10.0;
  std::vector<Node> best(w.size() + 1);
  auto offer = [&](size_t start, size_t end, int id, double score) {
    Node& n = best[end];
    double s = best[start].score + score;
    if (n.start < 0 || s > n.score) n = {id, s, static_cast<long>(start)};
  };
  for (size_t start = 0; start < w.size();) {
    const size_t char_len = std::min(Utf8Length(w[start]), w.size() - start);
    bool single_char_piece = false;
    for (size_t len = char_len; len <= max_piece_bytes_ && start + len <= w.size();) {
      auto it = ids_.find(std::string(w.substr(start, len)));
      if (it != ids_.end()) {
        offer(start, start + len, it->second, pieces_[it->second].second);
        single_char_piece |= len == char_len;
      }
      if (start + len == w.size()) break;
      len += Utf8Length(w[start + len]);
    }
    if (!single_char_piece) {
      if (unk_id_ < 0) throw Error("Unigram model has no unk_id but the text holds a character no piece covers");
      offer(start, start + char_len, unk_id_, unk_score);
    }
    start += char_len;
  }
  std::vector<std::string> out;
  std::string unknown;  // adjacent unknown pieces fuse
  for (size_t end = w.size(); end > 0;) {
    const Node& n = best[end];
    std::string piece(w.substr(n.start, end - n.start));
    if (n.id == unk_id_) {
      unknown.insert(0, piece);
    } else {
      if (!unknown.empty()) out.push_back(std::move(unknown)), unknown.clear();
      out.push_back(std::move(piece));
    }
    end = n.start;
  }
  if (!unknown.empty()) out.push_back(std::move(unknown));
  return {out.rbegin(), out.rend()};
}

void HfUnigramModel::Tokenize(std::string_view word, std::vector<int>& out) const {
  for (const std::string& piece : Segment(word)) {
    if (int id = TokenId(piece); id >= 0) {
      out.push_back(id);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (unsigned char c : piece) all = all && byte_ids_[c] >= 0;
      if (all) {
        for (unsigned char c : piece) out.push_back(byte_ids_[c]);
        continue;
      }
    }
    out.push_back(unk_id_);  // Segment() guarantees an unk_id for any unknown piece
  }
}

// ---------------------------------------------------------------- WordPiece

HfWordPieceModel::HfWordPieceModel(const json& m)
    : vocab_(m.at("vocab")),
      unk_token_(StrOr(m, "unk_token", "[UNK]")),
      prefix_(StrOr(m, "continuing_subword_prefix", "##")) {
  for (const auto& [token, id] : m.at("vocab").items()) max_token_bytes_ = std::max(max_token_bytes_, token.size());
  if (m.contains("max_input_chars_per_word") && !m["max_input_chars_per_word"].is_null()) {
    int n = JsonInt(m["max_input_chars_per_word"], "WordPiece max_input_chars_per_word");
    if (n < 0) throw Error("WordPiece max_input_chars_per_word is negative");
    max_chars_ = n;
  }
}

int HfWordPieceModel::UnkId() const {
  int id = vocab_.Id(unk_token_);
  if (id < 0) throw Error("WordPiece unk_token \"" + unk_token_ + "\" is not in the vocab");
  return id;
}

void HfWordPieceModel::Tokenize(std::string_view w, std::vector<int>& out) const {
  if (w.empty()) return;
  if (unicode::ToCodepoints(w).size() > max_chars_) {
    out.push_back(UnkId());
    return;
  }
  std::vector<int> ids;
  for (size_t start = 0; start < w.size();) {
    // A candidate longer than the longest vocab entry cannot match: start there (on a
    // character boundary), which keeps long words linear instead of quadratic.
    size_t end = std::min(w.size(), start + max_token_bytes_);
    while (end > start && end < w.size() && (static_cast<unsigned char>(w[end]) & 0xC0) == 0x80) --end;
    int id = -1;
    while (end > start) {
      std::string piece = (start > 0 ? prefix_ : "") + std::string(w.substr(start, end - start));
      id = vocab_.Id(piece);
      if (id >= 0) break;
      do --end; while (end > start && (static_cast<unsigned char>(w[end]) & 0xC0) == 0x80);
    }
    if (id < 0) {  // no piece fits here: the whole word is unknown
      out.push_back(UnkId());
      return;
    }
    ids.push_back(id);
    start = end;
  }
  out.insert(out.end(), ids.begin(), ids.end());
}

// ---------------------------------------------------------------- WordLevel

HfWordLevelModel::HfWordLevelModel(const json& m)
    : vocab_(m.at("vocab")), unk_token_(StrOr(m, "unk_token", "<unk>")) {}

void HfWordLevelModel::Tokenize(std::string_view word, std::vector<int>& out) const {
  if (word.empty()) return;
  int id = vocab_.Id(std::string(word));
  if (id < 0) id = vocab_.Id(unk_token_);
  if (id < 0) throw Error("WordLevel unk_token \"" + unk_token_ + "\" is not in the vocab");
  out.push_back(id);
}

}  // namespace sq
