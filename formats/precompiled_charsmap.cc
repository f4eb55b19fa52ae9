#include "formats/precompiled_charsmap.h"

#include "core/error.h"
#include "formats/unicode.h"

namespace sq {

std::string Base64Decode(std::string_view text, const std::string& what) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
  };
  if (text.size() % 4 != 0) throw Error(what + ": base64 length " + std::to_string(text.size()) + " is not a multiple of 4");
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    int pad = 0, group = 0;
    for (size_t k = 0; k < 4; ++k) {
      char c = text[i + k];
      bool last_group = i + 4 == text.size();
      if (c == '=' && last_group && k >= 2 && (k == 3 || text[i + 3] == '=')) {
        ++pad;
        group <<= 6;
        continue;
      }
      int v = value(c);
      if (v < 0 || pad > 0) throw Error(what + ": bad base64 character at offset " + std::to_string(i + k));
      group = (group << 6) | v;
    }
    out += static_cast<char>(group >> 16);
    if (pad < 2) out += static_cast<char>((group >> 8) & 0xFF);
    if (pad < 1) out += static_cast<char>(group & 0xFF);
  }
  return out;
}

namespace {

// darts-clone unit fields.
bool HasLeaf(uint32_t unit) { return (unit >> 8) & 1; }
uint32_t Value(uint32_t unit) { return unit & 0x7FFFFFFFu; }
uint32_t Label(uint32_t unit) { return unit & 0x800000FFu; }
uint32_t Offset(uint32_t unit) { return (unit >> 10) << ((unit & (1u << 9)) >> 6); }

}  // namespace

PrecompiledCharsmap::PrecompiledCharsmap(const std::string& blob) {
  if (blob.size() < 4) throw Error("precompiled_charsmap is " + std::to_string(blob.size()) + " bytes, too short for its trie size");
  uint32_t trie_bytes = 0;
  for (int k = 3; k >= 0; --k) trie_bytes = (trie_bytes << 8) | static_cast<unsigned char>(blob[k]);
  if (trie_bytes % 4 != 0 || trie_bytes == 0 || trie_bytes > blob.size() - 4) {
    throw Error("precompiled_charsmap trie size " + std::to_string(trie_bytes) + " does not fit its " +
                std::to_string(blob.size()) + " bytes");
  }
  units_.resize(trie_bytes / 4);
  for (size_t i = 0; i < units_.size(); ++i) {
    uint32_t u = 0;
    for (int k = 3; k >= 0; --k) u = (u << 8) | static_cast<unsigned char>(blob[4 + 4 * i + k]);
    units_[i] = u;
  }
  normalized_ = blob.substr(4 + trie_bytes);
  unicode::CheckUtf8(normalized_, "precompiled_charsmap replacement strings");
}

std::optional<std::string_view> PrecompiledCharsmap::Transform(std::string_view chunk) const {
  size_t pos = Offset(units_[0]);
  for (unsigned char c : chunk) {
    if (c == 0) break;  // keys never hold NUL: the crate stops there
    pos ^= c;
    if (pos >= units_.size() || Label(units_[pos]) != c) return std::nullopt;
    const uint32_t unit = units_[pos];
    pos ^= Offset(unit);
    if (!HasLeaf(unit)) continue;
    if (pos >= units_.size()) throw Error("precompiled_charsmap: a trie leaf lies outside the trie");
    const size_t start = Value(units_[pos]);
    if (start > normalized_.size()) {
      throw Error("precompiled_charsmap: a rule points past the replacement strings");
    }
    std::string_view out(normalized_.data() + start, normalized_.size() - start);
    out = out.substr(0, out.find('\0'));
    if (unicode::FindInvalidUtf8(out) != std::string_view::npos) {
      throw Error("precompiled_charsmap: a rule's replacement starts inside a UTF-8 character");
    }
    return out;
  }
  return std::nullopt;
}

std::string PrecompiledCharsmap::Normalize(std::string_view text) const {
  std::vector<uint32_t> cps = unicode::ToCodepoints(text);
  std::vector<size_t> byte_at(cps.size() + 1, 0);  // code point index -> byte offset
  for (size_t i = 0; i < cps.size(); ++i) {
    std::string one;
    unicode::AppendUtf8(one, cps[i]);
    byte_at[i + 1] = byte_at[i] + one.size();
  }
  std::vector<size_t> starts = unicode::GraphemeStarts(cps);
  starts.push_back(cps.size());
  std::string out;
  out.reserve(text.size());
  for (size_t g = 0; g + 1 < starts.size(); ++g) {
    std::string_view cluster = text.substr(byte_at[starts[g]], byte_at[starts[g + 1]] - byte_at[starts[g]]);
    if (cluster.size() < 6) {
      if (auto rule = Transform(cluster)) {
        out += *rule;
        continue;
      }
    }
    for (size_t i = starts[g]; i < starts[g + 1]; ++i) {
      std::string_view one = text.substr(byte_at[i], byte_at[i + 1] - byte_at[i]);
      auto rule = Transform(one);
      out += rule ? *rule : one;
    }
  }
  return out;
}

}  // namespace sq
