// The tokenizer.json pre-tokenizers: each splits the pieces of text it is given, following the
// `tokenizers` crate 0.22.
#include <functional>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "formats/json_util.h"
#include "formats/tokenizer_parts.h"
#include "formats/tokenizer_pipeline.h"
#include "formats/unicode.h"

namespace sq {

using json = nlohmann::json;
using namespace tokenizer_parts;

namespace {

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(const json& j) {
    for (const json& p : j.at("pretokenizers")) {
      if (auto made = MakePreTokenizer(p)) parts_.push_back(std::move(made));
    }
  }
  void Apply(std::vector<Piece>& pieces) const override {
    for (auto& p : parts_) p->Apply(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(const json& pattern, Behavior behavior, bool invert)
      : pattern_(pattern), behavior_(behavior), invert_(invert) {}
  void Apply(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    for (const Piece& p : pieces) SplitPiece(p, pattern_.Find(p.text), behavior_, invert_, out);
    pieces = std::move(out);
  }

 private:
  Pattern pattern_;
  Behavior behavior_;
  bool invert_;
};

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  explicit ByteLevelPreTokenizer(const json& j)
      : add_prefix_space_(Bool(j, "add_prefix_space", true)),
        use_regex_(Bool(j, "use_regex", true)),
        regex_(json{{"Regex", std::string(kGpt2Pattern)}}) {}
  void Apply(std::vector<Piece>& pieces) const override {
    std::vector<Piece> split;
    for (Piece p : pieces) {
      if (add_prefix_space_ && (p.text.empty() || p.text[0] != ' ')) p.text = " " + p.text;
      if (use_regex_) SplitPiece(p, regex_.Find(p.text), Behavior::kIsolated, false, split);
      else if (!p.text.empty()) split.push_back(p);
    }
    for (Piece& p : split) p.text = ByteLevelMap(p.text);
    pieces = std::move(split);
  }

 private:
  bool add_prefix_space_, use_regex_;
  Pattern regex_;
};

// Pieces of `length` code points (the last one may be shorter).
class FixedLengthPreTokenizer : public PreTokenizer {
 public:
  explicit FixedLengthPreTokenizer(const json& j)
      : length_(Int(j, "length", 5, 1, "FixedLength length")) {}
  void Apply(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    for (const Piece& p : pieces) {
      size_t pos = 0;
      while (pos < p.text.size()) {
        size_t start = pos;
        uint32_t cp = 0;
        for (int n = 0; n < length_ && pos < p.text.size(); ++n) {
          if (!unicode::DecodeUtf8(p.text, pos, cp)) ++pos;
        }
        out.push_back({p.text.substr(start, pos - start), p.at_start && start == 0});
      }
    }
    pieces = std::move(out);
  }

 private:
  int length_;
};

class MetaspacePreTokenizer : public PreTokenizer {
 public:
  explicit MetaspacePreTokenizer(const json& j)
      : replacement_(Str(j, "replacement", kMetaspace)), split_(Bool(j, "split", true)),
        scheme_(MetaspaceScheme(j)) {
    SingleChar(j, "replacement", "Metaspace", kMetaspace);
  }
  void Apply(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    for (Piece p : pieces) {
      p.text = ReplaceAll(p.text, " ", replacement_);
      bool starts = p.text.compare(0, replacement_.size(), replacement_) == 0;
      if (!starts && (scheme_ == "always" || (scheme_ == "first" && p.at_start))) {
        p.text = replacement_ + p.text;
      }
      if (!split_) {
        if (!p.text.empty()) out.push_back(p);
        continue;
      }
      std::vector<std::pair<size_t, size_t>> hits;
      for (size_t pos = p.text.find(replacement_); pos != std::string::npos;
           pos = p.text.find(replacement_, pos + replacement_.size())) {
        hits.emplace_back(pos, pos + replacement_.size());
      }
      SplitPiece(p, hits, Behavior::kMergedWithNext, false, out);
    }
    pieces = std::move(out);
  }

 private:
  std::string replacement_;
  bool split_;
  std::string scheme_;
};

// Splits on the code points a predicate selects (the crate's char patterns).
class PredicateSplit : public PreTokenizer {
 public:
  PredicateSplit(std::function<bool(uint32_t)> pred, Behavior behavior)
      : pred_(std::move(pred)), behavior_(behavior) {}
  void Apply(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    for (const Piece& p : pieces) SplitPiece(p, CharMatches(p.text, pred_), behavior_, false, out);
    pieces = std::move(out);
  }

 private:
  std::function<bool(uint32_t)> pred_;
  Behavior behavior_;
};

class BertPreTokenizer : public PreTokenizer {
 public:
  BertPreTokenizer()
      : whitespace_(unicode::IsWhiteSpace, Behavior::kRemoved),
        punctuation_(unicode::IsPunctuation, Behavior::kIsolated) {}
  void Apply(std::vector<Piece>& pieces) const override {
    whitespace_.Apply(pieces);
    punctuation_.Apply(pieces);
  }

 private:
  PredicateSplit whitespace_, punctuation_;
};

// Cuts where the script changes. As in the crate: a space belongs to no script (it stays with
// the text before it, and spaces at the very start are dropped), unassigned code points neither,
// and Hiragana, Katakana and U+30FC count as Han.
class UnicodeScriptsPreTokenizer : public PreTokenizer {
 public:
  void Apply(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    for (const Piece& p : pieces) {
      std::vector<size_t> cuts;
      int last = kNone;
      size_t pos = 0;
      while (pos < p.text.size()) {
        size_t start = pos;
        uint32_t cp = 0;
        if (!unicode::DecodeUtf8(p.text, pos, cp)) ++pos;
        int script = FixedScript(cp);
        if (script != kAny && last != kAny && last != script) cuts.push_back(start);
        if (script != kAny) last = script;
      }
      cuts.push_back(p.text.size());
      for (size_t i = 0; i + 1 < cuts.size(); ++i) {
        out.push_back({p.text.substr(cuts[i], cuts[i + 1] - cuts[i]), p.at_start && cuts[i] == 0});
      }
    }
    pieces = std::move(out);
  }

 private:
  static constexpr int kNone = -2, kAny = -1;
  static int FixedScript(uint32_t cp) {
    static const int han = unicode::ScriptIndex("Han"), hiragana = unicode::ScriptIndex("Hiragana"),
                     katakana = unicode::ScriptIndex("Katakana");
    if (cp == 0x30FC) return han;
    if (cp == ' ') return kAny;
    int script = unicode::ScriptOf(cp);
    if (script == 0) return kAny;  // Unknown: the crate's table maps unlisted code points to Any
    return (script == hiragana || script == katakana) ? han : script;
  }
};

std::unique_ptr<PreTokenizer> MakeSplit(const std::string& regex, Behavior b, bool invert) {
  return std::make_unique<SplitPreTokenizer>(json{{"Regex", regex}}, b, invert);
}

}  // namespace

std::unique_ptr<PreTokenizer> MakePreTokenizer(const json& j) {
  if (j.is_null()) return nullptr;
  const std::string t = Type(j);
  if (t == "Sequence") return std::make_unique<SequencePreTokenizer>(j);
  if (t == "ByteLevel") return std::make_unique<ByteLevelPreTokenizer>(j);
  if (t == "Metaspace") return std::make_unique<MetaspacePreTokenizer>(j);
  if (t == "Split") {
    return std::make_unique<SplitPreTokenizer>(j.at("pattern"),
                                               ParseBehavior(Str(j, "behavior", "Isolated")),
                                               Bool(j, "invert", false));
  }
  if (t == "Whitespace") return MakeSplit(R"(\w+|[^\w\s]+)", Behavior::kRemoved, true);
  if (t == "WhitespaceSplit") return std::make_unique<PredicateSplit>(unicode::IsWhiteSpace, Behavior::kRemoved);
  if (t == "Digits") {
    return std::make_unique<PredicateSplit>(
        unicode::IsNumber, Bool(j, "individual_digits", false) ? Behavior::kIsolated : Behavior::kContiguous);
  }
  if (t == "Punctuation") {
    return std::make_unique<PredicateSplit>(unicode::IsPunctuation,
                                            ParseBehavior(Str(j, "behavior", "Isolated")));
  }
  if (t == "CharDelimiterSplit") {
    uint32_t delimiter = SingleChar(j, "delimiter", "CharDelimiterSplit");
    return std::make_unique<PredicateSplit>([delimiter](uint32_t cp) { return cp == delimiter; },
                                            Behavior::kRemoved);
  }
  if (t == "BertPreTokenizer") return std::make_unique<BertPreTokenizer>();
  if (t == "UnicodeScripts") return std::make_unique<UnicodeScriptsPreTokenizer>();
  if (t == "FixedLength") return std::make_unique<FixedLengthPreTokenizer>(j);
  throw Error("unsupported pre_tokenizer type \"" + t + "\"");
}
}  // namespace sq
