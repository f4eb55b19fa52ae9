// Building blocks shared by the tokenizer.json stages (formats/tokenizer_pipeline.cc,
// tokenizer_pretokenizers.cc, tokenizer_decoders.cc): JSON field access, string and regex
// patterns, and the crate's NormalizedString::split with its five behaviors.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "formats/tokenizer_pipeline.h"
#include "formats/unicode.h"

namespace sq {

class UnicodeRegex;

namespace tokenizer_parts {

inline constexpr char kMetaspace[] = "\xE2\x96\x81";  // U+2581 '▁'

std::string ReplaceAll(const std::string& s, const std::string& from, const std::string& to);
// Optional fields: the default when absent or null.
std::string Str(const nlohmann::json& j, const char* key, const std::string& def = "");
bool Bool(const nlohmann::json& j, const char* key, bool def);
// An optional integer field (JsonInt's checks: a whole number in int's range) that must be at
// least `min`; `what` names it in the Error.
int Int(const nlohmann::json& j, const char* key, int def, int min, const std::string& what);
std::string Type(const nlohmann::json& j);  // throws Error when "type" is missing
// A field that must hold exactly one character (Metaspace replacement, split delimiter).
uint32_t SingleChar(const nlohmann::json& j, const char* key, const std::string& what,
                    const std::string& def = "");
// Metaspace's prepend_scheme (default "always"); the legacy add_prefix_space false must come
// with "never", as the crate's deserializer demands.
std::string MetaspaceScheme(const nlohmann::json& j);

// A literal string or a regex, as in {"String": " "} / {"Regex": "\\s+"}.
class Pattern {
 public:
  explicit Pattern(const nlohmann::json& j);
  ~Pattern();
  // Byte ranges [start, end) of the non-overlapping matches in `s`.
  std::vector<std::pair<size_t, size_t>> Find(const std::string& s) const;

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
Behavior ParseBehavior(const std::string& b);  // throws Error for an unknown name

// NormalizedString::split of the Rust crate: matches and gaps, then the behavior's merge rule;
// the resulting non-empty pieces are appended to `out`.
void SplitPiece(const Piece& p, const std::vector<std::pair<size_t, size_t>>& matches,
                Behavior behavior, bool invert, std::vector<Piece>& out);

}  // namespace tokenizer_parts
}  // namespace sq
