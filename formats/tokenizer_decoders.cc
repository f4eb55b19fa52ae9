// The tokenizer.json decoders: each rewrites the list of token strings on the way back to text,
// following the `tokenizers` crate 0.22.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "formats/tokenizer_parts.h"
#include "formats/tokenizer_pipeline.h"
#include "formats/unicode.h"

namespace sq {

using json = nlohmann::json;
using namespace tokenizer_parts;

namespace {

class SequenceDecoder : public Decoder {
 public:
  explicit SequenceDecoder(const json& j) {
    for (const json& d : j.at("decoders")) {
      if (auto made = MakeDecoder(d)) parts_.push_back(std::move(made));
    }
  }
  void Apply(std::vector<std::string>& t) const override {
    for (auto& p : parts_) p->Apply(t);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

class ByteLevelDecoder : public Decoder {
 public:
  void Apply(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& t : tokens) {
      std::string mapped;
      bool ok = true;
      for (uint32_t cp : unicode::ToCodepoints(t)) {
        int b = UnicodeToByte(cp);
        if (b < 0) { ok = false; break; }
        mapped += static_cast<char>(b);
      }
      bytes += ok ? mapped : t;  // a token outside the byte alphabet decodes as itself
    }
    tokens = {unicode::Utf8Lossy(bytes)};
  }
};

class MetaspaceDecoder : public Decoder {
 public:
  explicit MetaspaceDecoder(const json& j)
      : replacement_(Str(j, "replacement", kMetaspace)), never_(MetaspaceScheme(j) == "never") {}
  void Apply(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      // As in the Rust crate, the first token loses every replacement character.
      tokens[i] = ReplaceAll(tokens[i], replacement_, (i == 0 && !never_) ? "" : " ");
    }
  }

 private:
  std::string replacement_;
  bool never_;
};

class ReplaceDecoder : public Decoder {
 public:
  // The same JSON fields as the Replace normalizer, which does the work.
  explicit ReplaceDecoder(const json& j) : normalizer_(MakeNormalizer(j)) {}
  void Apply(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) t = normalizer_->Apply(t);
  }

 private:
  std::unique_ptr<Normalizer> normalizer_;
};

class ByteFallbackDecoder : public Decoder {
 public:
  void Apply(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    size_t pending_count = 0;
    auto flush = [&] {
      if (pending_count == 0) return;
      if (unicode::FindInvalidUtf8(pending) == std::string::npos) {
        out.push_back(pending);
      } else {
        for (size_t i = 0; i < pending_count; ++i) out.push_back("\xEF\xBF\xBD");
      }
      pending.clear();
      pending_count = 0;
    };
    for (std::string& t : tokens) {
      int byte = ParseByte(t);
      if (byte >= 0) {
        pending += static_cast<char>(byte);
        ++pending_count;
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens = std::move(out);
  }

 private:
  static int ParseByte(const std::string& t) {
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; ++i) {
      char c = t[i];
      int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10
              : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
      if (d < 0) return -1;
      v = v * 16 + d;
    }
    return v;
  }
};

class FuseDecoder : public Decoder {
 public:
  void Apply(std::vector<std::string>& tokens) const override {
    std::string all;
    for (auto& t : tokens) all += t;
    tokens = {all};
  }
};

class StripDecoder : public Decoder {
 public:
  explicit StripDecoder(const json& j)
      : content_(unicode::ToCodepoints(Str(j, "content", " "))),
        start_(Int(j, "start", 0, 0, "Strip decoder start")),
        stop_(Int(j, "stop", 0, 0, "Strip decoder stop")) {
    if (content_.size() != 1) throw Error("Strip decoder content must be one character");
  }
  void Apply(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) {
      std::vector<uint32_t> cps = unicode::ToCodepoints(t);
      size_t a = 0, b = cps.size();
      while (a < b && a < static_cast<size_t>(start_) && cps[a] == content_[0]) ++a;
      size_t cut = 0;
      while (b > a && cut < static_cast<size_t>(stop_) && cps[b - 1] == content_[0]) --b, ++cut;
      t = unicode::FromCodepoints({cps.begin() + a, cps.begin() + b});
    }
  }

 private:
  std::vector<uint32_t> content_;
  int start_, stop_;
};

// The crate's cleanup of " ." and friends, shared by the WordPiece and CTC decoders.
std::string WordPieceCleanup(std::string s) {
  static const std::pair<const char*, const char*> kRules[] = {
      {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
      {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (auto [from, to] : kRules) s = ReplaceAll(s, from, to);
  return s;
}

// Every token but the first loses the continuing prefix or, if it has none, gains a space.
class WordPieceDecoder : public Decoder {
 public:
  explicit WordPieceDecoder(const json& j)
      : prefix_(Str(j, "prefix", "##")), cleanup_(Bool(j, "cleanup", true)) {}
  void Apply(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string& t = tokens[i];
      if (i > 0) t = t.compare(0, prefix_.size(), prefix_) == 0 ? t.substr(prefix_.size()) : " " + t;
      if (cleanup_) t = WordPieceCleanup(t);
    }
  }

 private:
  std::string prefix_;
  bool cleanup_;
};

// CTC: repeated tokens collapse, the pad token vanishes, the word delimiter becomes a space.
class CtcDecoder : public Decoder {
 public:
  explicit CtcDecoder(const json& j)
      : pad_(Str(j, "pad_token", "<pad>")), delimiter_(Str(j, "word_delimiter_token", "|")),
        cleanup_(Bool(j, "cleanup", true)) {}
  void Apply(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0 && tokens[i] == tokens[i - 1]) continue;
      std::string t = ReplaceAll(tokens[i], pad_, "");
      if (cleanup_) t = ReplaceAll(WordPieceCleanup(t), delimiter_, " ");
      if (!t.empty()) out.push_back(std::move(t));
    }
    tokens = std::move(out);
  }

 private:
  std::string pad_, delimiter_;
  bool cleanup_;
};

class BpeSuffixDecoder : public Decoder {
 public:
  explicit BpeSuffixDecoder(const json& j) : suffix_(Str(j, "suffix", "</w>")) {}
  void Apply(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      tokens[i] = ReplaceAll(tokens[i], suffix_, i + 1 == tokens.size() ? "" : " ");
    }
  }

 private:
  std::string suffix_;
};

}  // namespace

std::unique_ptr<Decoder> MakeDecoder(const json& j) {
  if (j.is_null()) return nullptr;
  const std::string t = Type(j);
  if (t == "Sequence") return std::make_unique<SequenceDecoder>(j);
  if (t == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (t == "Metaspace") return std::make_unique<MetaspaceDecoder>(j);
  if (t == "Replace") return std::make_unique<ReplaceDecoder>(j);
  if (t == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (t == "Fuse") return std::make_unique<FuseDecoder>();
  if (t == "Strip") return std::make_unique<StripDecoder>(j);
  if (t == "BPEDecoder") return std::make_unique<BpeSuffixDecoder>(j);
  if (t == "WordPiece") return std::make_unique<WordPieceDecoder>(j);
  if (t == "CTC") return std::make_unique<CtcDecoder>(j);
  throw Error("unsupported decoder type \"" + t + "\"");
}

}  // namespace sq
