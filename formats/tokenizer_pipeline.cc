#include "formats/tokenizer_pipeline.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "formats/precompiled_charsmap.h"
#include "formats/tokenizer_parts.h"
#include "formats/unicode.h"

namespace sq {

using json = nlohmann::json;
using namespace tokenizer_parts;

const char kGpt2Pattern[] =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {

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

}  // namespace

std::string ByteLevelMap(std::string_view s) {
  std::string out;
  out.reserve(s.size() * 2);
  for (unsigned char b : s) unicode::AppendUtf8(out, Bytes().to_cp[b]);
  return out;
}

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

}  // namespace sq
