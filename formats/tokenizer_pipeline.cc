#include "formats/tokenizer_pipeline.h"

#include <functional>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "formats/json_util.h"
#include "formats/precompiled_charsmap.h"
#include "formats/unicode.h"
#include "formats/unicode_regex.h"

namespace sq {

using json = nlohmann::json;

const char kGpt2Pattern[] =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {

constexpr char kMetaspace[] = "\xE2\x96\x81";  // U+2581 '▁'

struct ByteTables {
  uint32_t to_cp[256];
  std::vector<int> to_byte;  // indexed by code point < 324
  ByteTables() : to_byte(324, -1) {
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      to_cp[b] = printable ? b : 256 + n++;
      to_byte[to_cp[b]] = b;
    }
  }
};
const ByteTables& Bytes() {
  static const ByteTables t;
  return t;
}

std::string ReplaceAll(const std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t hit = s.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos).append(to);
    pos = hit + from.size();
  }
  return out.append(s, pos, std::string::npos);
}

std::string Str(const json& j, const char* key, const std::string& def = "") {
  auto it = j.find(key);
  return (it == j.end() || it->is_null()) ? def : it->get<std::string>();
}
bool Bool(const json& j, const char* key, bool def) {
  auto it = j.find(key);
  return (it == j.end() || it->is_null()) ? def : it->get<bool>();
}
std::string Type(const json& j) {
  if (!j.is_object() || !j.contains("type")) throw Error("component without a \"type\": " + j.dump().substr(0, 80));
  return j.at("type").get<std::string>();
}

// A literal string or a regex, as in {"String": " "} / {"Regex": "\\s+"}.
class Pattern {
 public:
  explicit Pattern(const json& j) {
    if (j.contains("String")) {
      literal_ = j.at("String").get<std::string>();
    } else if (j.contains("Regex")) {
      regex_ = std::make_unique<UnicodeRegex>(j.at("Regex").get<std::string>());
    } else {
      throw Error("pattern must have \"String\" or \"Regex\": " + j.dump());
    }
  }
  // Byte ranges [start, end) of the non-overlapping matches in `s`.
  std::vector<std::pair<size_t, size_t>> Find(const std::string& s) const {
    std::vector<std::pair<size_t, size_t>> out;
    if (!regex_) {
      if (literal_.empty()) return out;
      for (size_t pos = s.find(literal_); pos != std::string::npos;
           pos = s.find(literal_, pos + literal_.size())) {
        out.emplace_back(pos, pos + literal_.size());
      }
      return out;
    }
    std::vector<uint32_t> cps = unicode::ToCodepoints(s);
    std::vector<size_t> offset(cps.size() + 1, 0);  // code point index -> byte offset
    for (size_t i = 0, b = 0; i < cps.size(); ++i) {
      offset[i] = b;
      b += cps[i] < 0x80 ? 1 : cps[i] < 0x800 ? 2 : cps[i] < 0x10000 ? 3 : 4;
      offset[i + 1] = b;
    }
    for (auto [a, b] : regex_->FindAll(cps)) out.emplace_back(offset[a], offset[b]);
    return out;
  }

 private:
  std::string literal_;
  std::unique_ptr<UnicodeRegex> regex_;
};

// The crate's char-predicate pattern: every code point for which `pred` holds is a match of
// its own (the split behavior then decides whether neighbouring matches join).
template <class Pred>
std::vector<std::pair<size_t, size_t>> CharMatches(const std::string& s, Pred pred) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t start = pos;
    uint32_t cp = 0;
    if (!unicode::DecodeUtf8(s, pos, cp)) ++pos;  // text was validated; defensive only
    if (pred(cp)) out.emplace_back(start, pos);
  }
  return out;
}

enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

Behavior ParseBehavior(const std::string& b) {
  if (b == "Removed") return Behavior::kRemoved;
  if (b == "Isolated") return Behavior::kIsolated;
  if (b == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return Behavior::kMergedWithNext;
  if (b == "Contiguous") return Behavior::kContiguous;
  throw Error("unknown split behavior \"" + b + "\"");
}

// NormalizedString::split of the Rust crate: matches and gaps, then the behavior's merge rule.
void SplitPiece(const Piece& p, const std::vector<std::pair<size_t, size_t>>& matches,
                Behavior behavior, bool invert, std::vector<Piece>& out) {
  using Seg = std::pair<std::pair<size_t, size_t>, bool>;  // (range, is_match)
  std::vector<Seg> segs;
  size_t pos = 0;
  for (auto [a, b] : matches) {
    if (a > pos) segs.push_back({{pos, a}, invert});
    segs.push_back({{a, b}, !invert});
    pos = b;
  }
  if (pos < p.text.size()) segs.push_back({{pos, p.text.size()}, invert});

  std::vector<Seg> kept;
  bool prev_match = false;
  switch (behavior) {
    case Behavior::kIsolated:
      for (auto& s : segs) kept.push_back({s.first, false});
      break;
    case Behavior::kRemoved:
      for (auto& s : segs) if (!s.second) kept.push_back(s);
      break;
    case Behavior::kMergedWithPrevious:
      for (auto& s : segs) {
        if (s.second && !prev_match && !kept.empty()) kept.back().first.second = s.first.second;
        else kept.push_back({s.first, false});
        prev_match = s.second;
      }
      break;
    case Behavior::kMergedWithNext:
      for (auto it = segs.rbegin(); it != segs.rend(); ++it) {
        if (it->second && !prev_match && !kept.empty()) kept.back().first.first = it->first.first;
        else kept.push_back({it->first, false});
        prev_match = it->second;
      }
      std::reverse(kept.begin(), kept.end());
      break;
    case Behavior::kContiguous:
      for (auto& s : segs) {
        if (s.second == prev_match && !kept.empty()) kept.back().first.second = s.first.second;
        else kept.push_back({s.first, false});
        prev_match = s.second;
      }
      break;
  }
  for (auto& [range, unused] : kept) {
    if (range.second <= range.first) continue;
    out.push_back({p.text.substr(range.first, range.second - range.first),
                   p.at_start && range.first == 0});
  }
}

// ---- normalizers ----

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(const json& j) {
    for (const json& n : j.at("normalizers")) {
      if (auto made = MakeNormalizer(n)) parts_.push_back(std::move(made));
    }
  }
  std::string Apply(const std::string& s) const override {
    std::string t = s;
    for (auto& p : parts_) t = p->Apply(t);
    return t;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(const json& j) : prepend_(Str(j, "prepend")) {}
  std::string Apply(const std::string& s) const override { return s.empty() ? s : prepend_ + s; }

 private:
  std::string prepend_;
};

class ReplaceNormalizer : public Normalizer {
 public:
  explicit ReplaceNormalizer(const json& j) : pattern_(j.at("pattern")), content_(Str(j, "content")) {}
  std::string Apply(const std::string& s) const override {
    std::string out;
    size_t pos = 0;
    for (auto [a, b] : pattern_.Find(s)) {
      out.append(s, pos, a - pos).append(content_);
      pos = b;
    }
    return out.append(s, pos, std::string::npos);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

class StripNormalizer : public Normalizer {
 public:
  explicit StripNormalizer(const json& j)
      : left_(Bool(j, "strip_left", true)), right_(Bool(j, "strip_right", true)) {}
  std::string Apply(const std::string& s) const override {
    std::vector<uint32_t> cps = unicode::ToCodepoints(s);
    size_t a = 0, b = cps.size();
    while (left_ && a < b && unicode::IsWhiteSpace(cps[a])) ++a;
    while (right_ && b > a && unicode::IsWhiteSpace(cps[b - 1])) --b;
    return unicode::FromCodepoints({cps.begin() + a, cps.begin() + b});
  }

 private:
  bool left_, right_;
};

class FunctionNormalizer : public Normalizer {
 public:
  explicit FunctionNormalizer(std::string (*fn)(std::string_view)) : fn_(fn) {}
  std::string Apply(const std::string& s) const override { return fn_(s); }

 private:
  std::string (*fn_)(std::string_view);
};

std::string StripAccents(std::string_view s) {
  std::vector<uint32_t> kept;
  for (uint32_t cp : unicode::ToCodepoints(s)) {
    if (!unicode::IsMark(cp)) kept.push_back(cp);
  }
  return unicode::FromCodepoints(kept);
}

// The crate's BertNormalizer: control characters dropped and whitespace made ' ' (clean_text),
// CJK ideographs surrounded by spaces, accents stripped (by default when lowercasing), lowercase.
class BertNormalizer : public Normalizer {
 public:
  explicit BertNormalizer(const json& j)
      : clean_text_(Bool(j, "clean_text", true)),
        chinese_(Bool(j, "handle_chinese_chars", true)),
        lowercase_(Bool(j, "lowercase", true)),
        strip_accents_(Bool(j, "strip_accents", lowercase_)) {}
  std::string Apply(const std::string& s) const override {
    std::vector<uint32_t> out;
    for (uint32_t cp : unicode::ToCodepoints(s)) {
      if (clean_text_) {
        if (cp == 0 || cp == 0xFFFD || IsControl(cp)) continue;
        if (cp == '\t' || cp == '\n' || cp == '\r' || unicode::IsWhiteSpace(cp)) cp = ' ';
      }
      bool spaced = chinese_ && IsCjk(cp);
      if (spaced) out.push_back(' ');
      out.push_back(cp);
      if (spaced) out.push_back(' ');
    }
    std::string t = unicode::FromCodepoints(out);
    if (strip_accents_) {
      std::vector<uint32_t> kept;
      for (uint32_t cp : unicode::ToCodepoints(unicode::Nfd(t))) {
        if (unicode::GetCategory(cp) != unicode::Category::kMn) kept.push_back(cp);
      }
      t = unicode::FromCodepoints(kept);
    }
    return lowercase_ ? unicode::ToLower(t) : t;
  }

 private:
  static bool IsControl(uint32_t cp) {
    if (cp == '\t' || cp == '\n' || cp == '\r') return false;
    // unicode_categories' is_other, which the crate uses: Cc, Cf and Co (not Cs, not Cn).
    auto c = unicode::GetCategory(cp);
    return c == unicode::Category::kCc || c == unicode::Category::kCf || c == unicode::Category::kCo;
  }
  static bool IsCjk(uint32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
  }
  bool clean_text_, chinese_, lowercase_, strip_accents_;
};

// The crate's Nmt normalizer: drops some control characters, maps other spaces to ' '.
std::string NmtNormalize(std::string_view s) {
  std::vector<uint32_t> out;
  for (uint32_t cp : unicode::ToCodepoints(s)) {
    if ((cp >= 1 && cp <= 8) || cp == 0xB || (cp >= 0xE && cp <= 0x1F) || cp == 0x7F ||
        cp == 0x8F || cp == 0x9F) {
      continue;
    }
    bool space = cp == 9 || cp == 0xA || cp == 0xC || cp == 0xD || cp == 0x1680 ||
                 (cp >= 0x200B && cp <= 0x200F) || cp == 0x2028 || cp == 0x2029 ||
                 cp == 0x2581 || cp == 0xFEFF || cp == 0xFFFD;
    out.push_back(space ? ' ' : cp);
  }
  return unicode::FromCodepoints(out);
}

class PrecompiledNormalizer : public Normalizer {
 public:
  explicit PrecompiledNormalizer(const json& j) : charsmap_(Load(j)) {}
  std::string Apply(const std::string& s) const override { return charsmap_.Normalize(s); }

 private:
  static PrecompiledCharsmap Load(const json& j) {
    try {
      return PrecompiledCharsmap(Base64Decode(Str(j, "precompiled_charsmap"), "precompiled_charsmap"));
    } catch (const std::exception& e) {
      Rethrow("Precompiled normalizer", e);
    }
  }
  PrecompiledCharsmap charsmap_;
};

std::string ByteLevelMap(std::string_view s) {
  std::string out;
  out.reserve(s.size() * 2);
  for (unsigned char b : s) unicode::AppendUtf8(out, Bytes().to_cp[b]);
  return out;
}

// ---- pre-tokenizers ----

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
        regex_(json{{"Regex", kGpt2Pattern}}) {}
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

// prepend_scheme (default "always"); the legacy add_prefix_space false must come with "never",
// as the crate's deserializer demands.
std::string MetaspaceScheme(const json& j) {
  std::string scheme = Str(j, "prepend_scheme", "always");
  if (scheme != "always" && scheme != "first" && scheme != "never") {
    throw Error("Metaspace prepend_scheme \"" + scheme + "\" is not always/first/never");
  }
  if (!Bool(j, "add_prefix_space", true) && scheme != "never") {
    throw Error("Metaspace add_prefix_space false does not match prepend_scheme \"" + scheme + "\"");
  }
  return scheme;
}

// Pieces of `length` code points (the last one may be shorter).
class FixedLengthPreTokenizer : public PreTokenizer {
 public:
  explicit FixedLengthPreTokenizer(const json& j)
      : length_(j.contains("length") ? JsonInt(j.at("length"), "FixedLength length") : 5) {
    if (length_ <= 0) throw Error("FixedLength length must be positive, got " + std::to_string(length_));
  }
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

uint32_t SingleChar(const json& j, const char* key, const std::string& what, const std::string& def = "") {
  std::string s = Str(j, key, def);
  unicode::CheckUtf8(s, what + " " + key);
  std::vector<uint32_t> cps = unicode::ToCodepoints(s);
  if (cps.size() != 1) throw Error(what + " " + key + " must be one character, got \"" + s + "\"");
  return cps[0];
}

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

// ---- decoders ----

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
  explicit ReplaceDecoder(const json& j) : normalizer_(j) {}
  void Apply(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) t = normalizer_.Apply(t);
  }

 private:
  ReplaceNormalizer normalizer_;
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
        start_(j.value("start", 0)), stop_(j.value("stop", 0)) {
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

uint32_t ByteToUnicode(unsigned char b) { return Bytes().to_cp[b]; }
int UnicodeToByte(uint32_t cp) { return cp < Bytes().to_byte.size() ? Bytes().to_byte[cp] : -1; }

std::unique_ptr<Normalizer> MakeNormalizer(const json& j) {
  if (j.is_null()) return nullptr;
  const std::string t = Type(j);
  if (t == "Sequence") return std::make_unique<SequenceNormalizer>(j);
  if (t == "Prepend") return std::make_unique<PrependNormalizer>(j);
  if (t == "Replace") return std::make_unique<ReplaceNormalizer>(j);
  if (t == "Strip") return std::make_unique<StripNormalizer>(j);
  if (t == "Lowercase") return std::make_unique<FunctionNormalizer>(unicode::ToLower);
  if (t == "NFC") return std::make_unique<FunctionNormalizer>(unicode::Nfc);
  if (t == "NFD") return std::make_unique<FunctionNormalizer>(unicode::Nfd);
  if (t == "NFKC") return std::make_unique<FunctionNormalizer>(unicode::Nfkc);
  if (t == "NFKD") return std::make_unique<FunctionNormalizer>(unicode::Nfkd);
  if (t == "StripAccents") return std::make_unique<FunctionNormalizer>(StripAccents);
  if (t == "BertNormalizer") return std::make_unique<BertNormalizer>(j);
  if (t == "Nmt") return std::make_unique<FunctionNormalizer>(NmtNormalize);
  if (t == "Precompiled") return std::make_unique<PrecompiledNormalizer>(j);
  if (t == "ByteLevel") return std::make_unique<FunctionNormalizer>(ByteLevelMap);
  throw Error("unsupported normalizer type \"" + t + "\"");
}

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
