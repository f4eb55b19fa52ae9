#include "formats/llama2c_tokenizer.h"

#include <algorithm>
#include <cstdint>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/input_file.h"
#include "formats/bpe.h"
#include "formats/tokenizer.h"
#include "formats/unicode.h"

namespace sq {

namespace {

constexpr char kMetaspace[] = "\xE2\x96\x81";  // U+2581 '▁'

std::string ReadFile(const std::string& path) { return ReadInputFile(path); }

// The names of the three control tokens, whatever bytes the file stores for them.
std::string ControlName(int id) {
  return id == kLlama2cUnk ? "<unk>" : id == kLlama2cBos ? "<s>" : "</s>";
}

class Llama2cTokenizer : public Tokenizer {
 public:
  explicit Llama2cTokenizer(Llama2cVocab v) : v_(std::move(v)) {
    // Control tokens are never produced from text (as in SentencePiece); the first of
    // duplicate pieces wins.
    for (int id = kLlama2cFirstByte; id < static_cast<int>(v_.pieces.size()); ++id) {
      lookup_.emplace(v_.pieces[id], id);
    }
  }

  std::vector<int> Encode(std::string_view text, bool add_special) const override {
    unicode::CheckUtf8(text, "tokenizer input text");
    std::vector<int> ids;
    if (!text.empty()) {
      std::string prefixed(1, ' ');  // SentencePiece's dummy prefix
      prefixed += text;
      size_t pos = 0;
      while (pos < prefixed.size()) {
        size_t start = pos;
        uint32_t cp;
        unicode::DecodeUtf8(prefixed, pos, cp);
        auto it = lookup_.find(prefixed.substr(start, pos - start));
        if (it != lookup_.end()) {
          ids.push_back(it->second);
        } else {
          for (size_t b = start; b < pos; ++b) {
            ids.push_back(static_cast<unsigned char>(prefixed[b]) + kLlama2cFirstByte);
          }
        }
      }
      BpeMerge<float>(ids, [&](int a, int b, float* rank, int* merged) {
        auto it = lookup_.find(v_.pieces[a] + v_.pieces[b]);
        if (it == lookup_.end()) return false;
        *rank = -v_.scores[it->second];  // highest score first
        *merged = it->second;
        return true;
      });
    }
    if (add_special) ids.insert(ids.begin(), kLlama2cBos);
    return ids;
  }

  // llama2.c's decode: <0xXX> pieces are raw bytes and the piece after BOS loses its leading
  // space. Invalid UTF-8 in the result becomes U+FFFD.
  std::string Decode(std::span<const int> ids, bool skip_special) const override {
    std::string bytes;
    int prev = -1;
    for (int id : ids) {
      if (id < 0 || id >= vocab_size()) { prev = id; continue; }
      if (id < kLlama2cFirstByte) {
        if (!skip_special) bytes += ControlName(id);
      } else if (id < kLlama2cFirstByte + 256) {
        bytes += static_cast<char>(id - kLlama2cFirstByte);
      } else {
        const std::string& piece = v_.pieces[id];
        bytes += (prev == kLlama2cBos && !piece.empty() && piece[0] == ' ') ? piece.substr(1) : piece;
      }
      prev = id;
    }
    return unicode::Utf8Lossy(bytes);
  }

  std::string TokenText(int id) const override {
    if (id < 0 || id >= vocab_size()) return "<id " + std::to_string(id) + " not in vocab>";
    return id < kLlama2cFirstByte ? ControlName(id) : v_.pieces[id];
  }
  int bos_id() const override { return kLlama2cBos; }
  int eos_id() const override { return kLlama2cEos; }
  int vocab_size() const override { return static_cast<int>(v_.pieces.size()); }

 private:
  Llama2cVocab v_;
  std::unordered_map<std::string, int> lookup_;
};

}  // namespace

Llama2cVocab ReadLlama2cVocab(const std::string& path, int vocab_size) {
  if (vocab_size < kLlama2cFirstByte + 256) {
    throw Error(path + ": vocab_size " + std::to_string(vocab_size) +
                " is too small for a llama2.c tokenizer (needs >= 259: 3 control + 256 byte tokens)");
  }
  const std::string data = ReadFile(path);
  size_t pos = 0;
  auto read = [&](void* dst, size_t n, const std::string& what) {
    if (data.size() - pos < n) {
      throw Error(path + ": truncated at byte " + std::to_string(pos) + " while reading " + what);
    }
    std::memcpy(dst, data.data() + pos, n);
    pos += n;
  };
  Llama2cVocab v;
  int32_t max_len;
  read(&max_len, 4, "max_token_length");
  v.max_token_length = max_len;
  for (int i = 0; i < vocab_size; ++i) {
    float score;
    int32_t len;
    std::string what = "token " + std::to_string(i) + " of " + std::to_string(vocab_size);
    read(&score, 4, what);
    // Merges are ranked by score: a NaN would make the sort's order undefined.
    if (!std::isfinite(score)) throw Error(path + ": " + what + " has a non-finite score");
    read(&len, 4, what);
    if (len < 0 || static_cast<size_t>(len) > data.size() - pos) {
      throw Error(path + ": " + what + " has length " + std::to_string(len) + ", past the end of the file");
    }
    v.pieces.emplace_back(data.data() + pos, len);
    v.scores.push_back(score);
    pos += len;
  }
  if (pos != data.size()) {
    throw Error(path + ": " + std::to_string(data.size() - pos) + " bytes left after " +
                std::to_string(vocab_size) + " tokens: vocab_size does not match this tokenizer");
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    if (v.pieces[kLlama2cFirstByte + b] != name) {
      throw Error(path + ": token " + std::to_string(kLlama2cFirstByte + b) + " is \"" +
                  v.pieces[kLlama2cFirstByte + b] + "\", expected the byte token " + name);
    }
  }
  return v;
}

std::unique_ptr<Tokenizer> LoadLlama2cTokenizer(const std::string& path, int vocab_size) {
  return std::make_unique<Llama2cTokenizer>(ReadLlama2cVocab(path, vocab_size));
}

// Mirrors transformers' SentencePieceExtractor: every split of every piece into two vocab
// pieces is a merge, ranked by the score of the merged piece (stable in id order), and
// within one piece by the ids of its halves.
void WriteHfTokenizerFromLlama2c(const std::string& tokenizer_bin, int vocab_size,
                                 const std::string& out_json_path) {
  using json = nlohmann::ordered_json;
  Llama2cVocab v = ReadLlama2cVocab(tokenizer_bin, vocab_size);
  auto hf_piece = [&](int id) {
    if (id < kLlama2cFirstByte) return ControlName(id);
    std::string p;
    for (char c : v.pieces[id]) p += c == ' ' ? std::string(kMetaspace) : std::string(1, c);
    return p;
  };
  json vocab = json::object();
  std::unordered_map<std::string, int> ids;
  for (int id = 0; id < vocab_size; ++id) {
    std::string p = hf_piece(id);
    unicode::CheckUtf8(p, tokenizer_bin + ": token " + std::to_string(id));
    if (!ids.emplace(p, id).second) {
      throw Error(tokenizer_bin + ": token " + std::to_string(id) + " duplicates token " +
                  std::to_string(ids[p]) + "; tokenizer.json cannot hold both");
    }
    vocab[p] = id;
  }
  struct Merge { float score; int piece, left, right; };
  std::vector<Merge> merges;
  for (int id = kLlama2cFirstByte; id < vocab_size; ++id) {
    const std::string p = hf_piece(id);
    std::vector<Merge> local;
    size_t pos = 0;
    uint32_t cp;
    while (unicode::DecodeUtf8(p, pos, cp) && pos < p.size()) {
      auto l = ids.find(p.substr(0, pos)), r = ids.find(p.substr(pos));
      if (l != ids.end() && r != ids.end() && l->second >= kLlama2cFirstByte &&
          r->second >= kLlama2cFirstByte) {
        local.push_back({v.scores[id], id, l->second, r->second});
      }
    }
    std::sort(local.begin(), local.end(), [](const Merge& a, const Merge& b) {
      return std::pair(a.left, a.right) < std::pair(b.left, b.right);
    });
    merges.insert(merges.end(), local.begin(), local.end());
  }
  std::stable_sort(merges.begin(), merges.end(),
                   [](const Merge& a, const Merge& b) { return a.score > b.score; });
  json merge_list = json::array();
  for (const Merge& m : merges) merge_list.push_back({hf_piece(m.left), hf_piece(m.right)});

  json added = json::array();
  for (int id = 0; id < kLlama2cFirstByte; ++id) {
    added.push_back({{"id", id}, {"content", ControlName(id)}, {"single_word", false},
                     {"lstrip", false}, {"rstrip", false}, {"normalized", false},
                     {"special", true}});
  }
  json bos_item = {{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}};
  json out = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers",
         {{{"type", "Prepend"}, {"prepend", kMetaspace}},
          {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kMetaspace}}}}}},
      {"pre_tokenizer", nullptr},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", {bos_item, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
        {"pair",
         {bos_item, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
          {{"SpecialToken", {{"id", "<s>"}, {"type_id", 1}}}},
          {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
        {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}}},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders",
         {{{"type", "Replace"}, {"pattern", {{"String", kMetaspace}}}, {"content", " "}},
          {{"type", "ByteFallback"}},
          {{"type", "Fuse"}},
          {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", "<unk>"},
        {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
        {"fuse_unk", true}, {"byte_fallback", true}, {"ignore_merges", false},
        {"vocab", vocab}, {"merges", merge_list}}}};

  // Written beside the target and renamed, so an interrupted run leaves no half file.
  std::string tmp = out_json_path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary);
    if (!f) throw Error(out_json_path + ": cannot write");
    f << out.dump(2, ' ', false) << "\n";
    if (!f) throw Error(out_json_path + ": write failed");
  }
  std::filesystem::rename(tmp, out_json_path);
}

}  // namespace sq
