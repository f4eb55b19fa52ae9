#include "formats/hf_tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "formats/json_util.h"
#include "formats/bpe.h"
#include "formats/tokenizer.h"
#include "formats/tokenizer_pipeline.h"
#include "formats/unicode.h"

namespace sq {

using json = nlohmann::json;

namespace {

constexpr size_t kMaxCachedWordBytes = 256;
constexpr size_t kMaxCacheEntries = 200000;

std::string OptString(const json& j, const char* key) {
  auto it = j.find(key);
  return (it == j.end() || it->is_null()) ? "" : it->get<std::string>();
}

}  // namespace

// ---------------------------------------------------------------- BPE model

HfBpeModel::HfBpeModel(const json& m) {
  if (m.contains("dropout") && !m["dropout"].is_null() && m["dropout"].get<double>() > 0) {
    throw Error("BPE dropout " + m["dropout"].dump() + " is not supported (encoding must be deterministic)");
  }
  vocab_ = VocabTable(m.at("vocab"));
  const json& merges = m.at("merges");
  if (!merges.is_array()) throw Error("\"merges\" is not an array");
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const json& e = merges[rank];
    std::string a, b;
    if (e.is_string()) {
      std::string s = e.get<std::string>();
      size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) {
        throw Error("merge " + std::to_string(rank) + " \"" + s + "\" is not two tokens \"a b\"");
      }
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (e.is_array() && e.size() == 2) {
      a = e[0].get<std::string>();
      b = e[1].get<std::string>();
    } else {
      throw Error("merge " + std::to_string(rank) + " is neither \"a b\" nor [a, b]: " + e.dump());
    }
    int ia = TokenId(a), ib = TokenId(b), iab = TokenId(a + b);
    for (auto [tok, id] : {std::pair{&a, ia}, {&b, ib}}) {
      if (id < 0) throw Error("merge " + std::to_string(rank) + " names unknown token \"" + *tok + "\"");
    }
    if (iab < 0) throw Error("merge " + std::to_string(rank) + " makes \"" + a + b + "\", which is not in the vocab");
    // Later duplicates win, as in the Rust crate's HashMap collect.
    merges_[(static_cast<uint64_t>(ia) << 32) | static_cast<uint32_t>(ib)] = {static_cast<int>(rank), iab};
  }
  std::string unk = OptString(m, "unk_token");
  if (!unk.empty()) {
    unk_id_ = TokenId(unk);
    if (unk_id_ < 0) throw Error("unk_token \"" + unk + "\" is not in the vocab");
  }
  fuse_unk_ = m.value("fuse_unk", false);
  byte_fallback_ = m.value("byte_fallback", false);
  ignore_merges_ = m.value("ignore_merges", false);
  prefix_ = OptString(m, "continuing_subword_prefix");
  suffix_ = OptString(m, "end_of_word_suffix");
  byte_ids_ = ByteFallbackIds(*this);
}

// BPE::merge_word of the Rust crate: characters (with prefix/suffix), unknown ones as byte
// fallback or (fused) unk, then the ranked merges.
void HfBpeModel::MergeWord(std::string_view w, std::vector<int>& ids) const {
  int unk_pending = -1;  // the crate keeps one pending unk so that fuse_unk can extend it
  size_t pos = 0;
  while (pos < w.size()) {
    size_t start = pos;
    uint32_t cp;
    if (!unicode::DecodeUtf8(w, pos, cp)) ++pos;  // input was validated; defensive only
    std::string s(w.substr(start, pos - start));
    if (start > 0) s = prefix_ + s;
    if (pos == w.size()) s += suffix_;
    if (int id = vocab_.Id(s); id >= 0) {
      if (unk_pending >= 0) ids.push_back(unk_pending), unk_pending = -1;
      ids.push_back(id);
      continue;
    }
    if (byte_fallback_) {
      bool all = std::all_of(s.begin(), s.end(),
                             [&](char c) { return byte_ids_[static_cast<unsigned char>(c)] >= 0; });
      if (all) {
        for (char c : s) ids.push_back(byte_ids_[static_cast<unsigned char>(c)]);
        continue;
      }
    }
    if (unk_id_ >= 0) {
      if (unk_pending >= 0 && !fuse_unk_) ids.push_back(unk_pending);
      unk_pending = unk_id_;
    }
    // Without an unk token the crate drops the character; so do we.
  }
  if (unk_pending >= 0) ids.push_back(unk_pending);
  BpeMerge<int>(ids, [&](int a, int b, int* rank, int* merged) {
    auto it = merges_.find((static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b));
    if (it == merges_.end()) return false;
    *rank = it->second.first;
    *merged = it->second.second;
    return true;
  });
}

void HfBpeModel::Tokenize(std::string_view word, std::vector<int>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (int id = vocab_.Id(std::string(word)); id >= 0) {
      out.push_back(id);
      return;
    }
  }
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  std::string key(cacheable ? word : std::string_view());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int> ids;
  MergeWord(word, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
    cache_.emplace(std::move(key), std::move(ids));
  }
}

namespace {

// Old files have no "type": the crate then tries BPE, WordPiece, WordLevel and Unigram in turn,
// each taking the first whose required fields are all there.
std::string LegacyModelType(const json& m) {
  if (m.contains("merges")) return "BPE";
  if (m.contains("vocab") && m.at("vocab").is_array()) return "Unigram";
  bool wordpiece = m.contains("unk_token") && m.contains("continuing_subword_prefix") &&
                   m.contains("max_input_chars_per_word");
  return wordpiece ? "WordPiece" : "WordLevel";
}

}  // namespace

std::unique_ptr<TokenModel> MakeTokenModel(const json& m) {
  if (!m.is_object()) throw Error("\"model\" is not an object");
  const std::string type = m.contains("type") ? m.at("type").get<std::string>() : LegacyModelType(m);
  if (type == "BPE") return std::make_unique<HfBpeModel>(m);
  if (type == "Unigram") return std::make_unique<HfUnigramModel>(m);
  if (type == "WordPiece") return std::make_unique<HfWordPieceModel>(m);
  if (type == "WordLevel") return std::make_unique<HfWordLevelModel>(m);
  throw Error("unsupported model type \"" + type + "\" (BPE, Unigram, WordPiece and WordLevel are)");
}

// ---------------------------------------------------------------- the tokenizer

namespace {

struct AddedToken {
  std::string content;  // for normalized tokens: the normalized form, used for matching
  int id;
  bool lstrip, rstrip, single_word;
};

// A run of text, or one added token (id >= 0).
struct Section {
  std::string text;
  int id = -1;
  bool at_start = false;
};

bool IsWordChar(uint32_t cp) { return unicode::IsLetter(cp) || unicode::IsNumber(cp) || cp == '_'; }

// Code point ending at byte `end` (which must be > 0) and its start.
uint32_t CodepointBefore(const std::string& s, size_t end, size_t* start) {
  size_t b = end - 1;
  while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
  size_t p = b;
  uint32_t cp = 0;
  unicode::DecodeUtf8(s, p, cp);
  *start = b;
  return cp;
}

// Finds added tokens leftmost-longest (the crate's Aho-Corasick LeftmostLongest) and applies
// their lstrip / rstrip / single_word flags.
class AddedMatcher {
 public:
  void Add(AddedToken t) {
    if (t.content.empty()) return;
    by_first_[static_cast<unsigned char>(t.content[0])].push_back(tokens_.size());
    tokens_.push_back(std::move(t));
  }
  void Finish() {
    for (auto& list : by_first_) {
      std::stable_sort(list.begin(), list.end(), [&](size_t a, size_t b) {
        return tokens_[a].content.size() > tokens_[b].content.size();
      });
    }
  }
  bool empty() const { return tokens_.empty(); }

  void Split(const Section& in, std::vector<Section>& out) const {
    const std::string& s = in.text;
    size_t done = 0, pos = 0;
    while (pos < s.size()) {
      const AddedToken* hit = Match(s, pos);
      if (!hit) { ++pos; continue; }
      size_t start = pos, stop = pos + hit->content.size();
      if (hit->lstrip) {
        size_t b;
        while (start > done && unicode::IsWhiteSpace(CodepointBefore(s, start, &b))) start = b;
      }
      if (hit->rstrip) {
        uint32_t cp;
        size_t p = stop;
        while (p < s.size() && unicode::DecodeUtf8(s, p, cp) && unicode::IsWhiteSpace(cp)) stop = p;
      }
      if (start > done) out.push_back({s.substr(done, start - done), -1, in.at_start && done == 0});
      out.push_back({"", hit->id, false});
      done = pos = stop;
    }
    if (done < s.size()) out.push_back({s.substr(done), -1, in.at_start && done == 0});
  }

 private:
  const AddedToken* Match(const std::string& s, size_t pos) const {
    for (size_t k : by_first_[static_cast<unsigned char>(s[pos])]) {
      const AddedToken& t = tokens_[k];
      if (s.compare(pos, t.content.size(), t.content) != 0) continue;
      if (t.single_word) {
        size_t b, p = pos + t.content.size();
        uint32_t cp;
        if (pos > 0 && IsWordChar(CodepointBefore(s, pos, &b))) continue;
        if (p < s.size() && unicode::DecodeUtf8(s, p, cp) && IsWordChar(cp)) continue;
      }
      return &t;
    }
    return nullptr;
  }

  std::vector<AddedToken> tokens_;
  std::vector<size_t> by_first_[256];
};

class HfTokenizer : public Tokenizer {
 public:
  HfTokenizer(const json& j, const json& config) : model_(MakeTokenModel(j.at("model"))) {
    normalizer_ = MakeNormalizer(j.value("normalizer", json()));
    pre_tokenizer_ = MakePreTokenizer(j.value("pre_tokenizer", json()));
    decoder_ = MakeDecoder(j.value("decoder", json()));
    vocab_size_ = model_->max_id() + 1;
    LoadAddedTokens(j.value("added_tokens", json::array()));
    LoadPostProcessor(j.value("post_processor", json()), config);
    bos_id_ = SpecialId(config, "bos_token", prefix_.empty() ? -1 : prefix_.front());
    eos_id_ = SpecialId(config, "eos_token", suffix_.empty() ? -1 : suffix_.back());
  }

  std::vector<int> Encode(std::string_view text, bool add_special) const override {
    unicode::CheckUtf8(text, "tokenizer input text");
    std::vector<int> ids;
    if (add_special) ids = prefix_;
    std::vector<Section> raw, parts;
    raw_matcher_.Split({std::string(text), -1, true}, raw);
    for (Section& sec : raw) {
      if (sec.id >= 0) { ids.push_back(sec.id); continue; }
      if (normalizer_) sec.text = normalizer_->Apply(sec.text);
      parts.clear();
      normalized_matcher_.Split(sec, parts);
      for (Section& part : parts) {
        if (part.id >= 0) { ids.push_back(part.id); continue; }
        std::vector<Piece> pieces{{std::move(part.text), part.at_start}};
        if (pre_tokenizer_) pre_tokenizer_->Apply(pieces);
        for (const Piece& p : pieces) model_->Tokenize(p.text, ids);
      }
    }
    if (add_special) ids.insert(ids.end(), suffix_.begin(), suffix_.end());
    return ids;
  }

  // The crate's 0.22 decode: ids -> token strings (added tokens by content), special ones
  // dropped when asked, then the decoder (or a join with spaces when there is none).
  std::string Decode(std::span<const int> ids, bool skip_special) const override {
    std::vector<std::string> tokens;
    for (int id : ids) {
      const std::string* t = Lookup(id);
      if (!t) continue;  // unknown ids are dropped, as the crate does
      if (skip_special && special_contents_.count(*t)) continue;
      tokens.push_back(*t);
    }
    if (!decoder_) {
      std::string out;
      for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
      return out;
    }
    decoder_->Apply(tokens);
    std::string out;
    for (auto& t : tokens) out += t;
    return out;
  }

  std::string TokenText(int id) const override {
    const std::string* t = Lookup(id);
    return t ? *t : "<id " + std::to_string(id) + " not in vocab>";
  }
  int bos_id() const override { return bos_id_; }
  int eos_id() const override { return eos_id_; }
  int vocab_size() const override { return vocab_size_; }

 private:
  const std::string* Lookup(int id) const {
    auto it = added_by_id_.find(id);
    return it != added_by_id_.end() ? &it->second : model_->TokenString(id);
  }

  int IdOf(const std::string& token) const {
    for (auto& [id, content] : added_by_id_) {
      if (content == token) return id;
    }
    return model_->TokenId(token);
  }

  void LoadAddedTokens(const json& added) {
    for (const json& a : added) {
      AddedToken t{a.at("content").get<std::string>(), JsonInt(a.at("id"), "added token id"),
                   a.value("lstrip", false), a.value("rstrip", false), a.value("single_word", false)};
      if (t.id < 0) throw Error("added token \"" + t.content + "\" has a negative id");
      added_by_id_[t.id] = t.content;
      if (a.value("special", false)) special_contents_.insert(t.content);
      vocab_size_ = std::max(vocab_size_, t.id + 1);
      if (a.value("normalized", !a.value("special", false))) {
        // Matched after normalization, against its own normalized form.
        if (normalizer_) t.content = normalizer_->Apply(t.content);
        normalized_matcher_.Add(std::move(t));
      } else {
        raw_matcher_.Add(std::move(t));
      }
    }
    raw_matcher_.Finish();
    normalized_matcher_.Finish();
  }

  std::vector<int> SpecialIds(const json& tokens, const std::string& name) const {
    if (!tokens.contains(name)) throw Error("post_processor names special token \"" + name + "\" without ids");
    std::vector<int> ids;
    for (const json& id : tokens.at(name).at("ids")) {
      ids.push_back(JsonInt(id, "post_processor special token \"" + name + "\" id"));
    }
    return ids;
  }

  void AddProcessor(const json& p) {
    if (p.is_null()) return;
    std::string type = p.at("type").get<std::string>();
    if (type == "ByteLevel") return;  // trims offsets only
    if (type == "Sequence") {
      for (const json& q : p.at("processors")) AddProcessor(q);
      return;
    }
    if (type == "TemplateProcessing") {
      bool seen_a = false;
      for (const json& item : p.at("single")) {
        if (item.contains("Sequence")) { seen_a = true; continue; }
        std::vector<int> ids = SpecialIds(p.at("special_tokens"), item.at("SpecialToken").at("id").get<std::string>());
        auto& dst = seen_a ? suffix_ : prefix_;
        dst.insert(dst.end(), ids.begin(), ids.end());
      }
      return;
    }
    if (type == "RobertaProcessing" || type == "BertProcessing") {
      prefix_.push_back(JsonInt(p.at("cls").at(1), "post_processor cls id"));
      suffix_.push_back(JsonInt(p.at("sep").at(1), "post_processor sep id"));
      return;
    }
    throw Error("unsupported post_processor type \"" + type + "\"");
  }

  // The post-processor decides; when it adds nothing, tokenizer_config.json's add_bos_token /
  // add_eos_token (transformers' rule for tokenizers without a template) apply.
  void LoadPostProcessor(const json& p, const json& config) {
    AddProcessor(p);
    if (!prefix_.empty() || !suffix_.empty()) return;
    if (config.value("add_bos_token", false)) {
      int id = SpecialId(config, "bos_token", -1);
      if (id < 0) throw Error("tokenizer_config.json: add_bos_token is true but bos_token is not a known token");
      prefix_.push_back(id);
    }
    if (config.value("add_eos_token", false)) {
      int id = SpecialId(config, "eos_token", -1);
      if (id < 0) throw Error("tokenizer_config.json: add_eos_token is true but eos_token is not a known token");
      suffix_.push_back(id);
    }
  }

  int SpecialId(const json& config, const char* key, int fallback) const {
    auto it = config.find(key);
    if (it == config.end() || it->is_null()) return fallback;
    std::string name = it->is_string() ? it->get<std::string>() : it->at("content").get<std::string>();
    return IdOf(name);
  }

  std::unique_ptr<TokenModel> model_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<Decoder> decoder_;
  AddedMatcher raw_matcher_, normalized_matcher_;
  std::unordered_map<int, std::string> added_by_id_;
  std::set<std::string> special_contents_;
  std::vector<int> prefix_, suffix_;
  int bos_id_ = -1, eos_id_ = -1, vocab_size_ = 0;
};

json ReadJson(const std::string& path) { return ReadJsonFile(path); }

}  // namespace

std::unique_ptr<Tokenizer> LoadHfTokenizer(const std::string& path) {
  json j = ReadJson(path);
  json config = json::object();
  auto config_path = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  if (std::filesystem::exists(config_path)) config = ReadJson(config_path.string());
  try {
    if (!j.is_object() || !j.contains("model")) throw Error("no \"model\" object (not a tokenizer.json)");
    return std::make_unique<HfTokenizer>(j, config);
  } catch (const std::exception& e) {
    Rethrow(path, e);
  }
}

}  // namespace sq
