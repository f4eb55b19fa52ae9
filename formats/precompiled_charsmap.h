// SentencePiece's precompiled_charsmap, the rule table of the Hugging Face `Precompiled`
// normalizer: a little-endian u32 byte size, a darts-clone double-array trie of that many bytes
// (keys: UTF-8 byte strings), then NUL-terminated replacement strings that the trie's values
// point into.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sq {

// Standard base64 (RFC 4648, '=' padding); throws Error naming `what` on a bad character/length.
std::string Base64Decode(std::string_view text, const std::string& what);

class PrecompiledCharsmap {
 public:
  explicit PrecompiledCharsmap(const std::string& blob);  // throws Error on a malformed blob

  // The crate's Precompiled::normalize: each grapheme cluster shorter than 6 bytes is replaced
  // whole when a rule matches a prefix of it; otherwise each code point is looked up alone.
  std::string Normalize(std::string_view text) const;

  // The replacement of the shortest rule matching a prefix of `chunk` (spm_precompiled's
  // transform), or nothing when no rule matches.
  std::optional<std::string_view> Transform(std::string_view chunk) const;

 private:
  std::vector<uint32_t> units_;
  std::string normalized_;
};

}  // namespace sq
