#include "formats/tokenizer_parts.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "formats/json_util.h"
#include "formats/unicode_regex.h"

namespace sq::tokenizer_parts {

using json = nlohmann::json;

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

std::string Str(const json& j, const char* key, const std::string& def) {
  auto it = j.find(key);
  return (it == j.end() || it->is_null()) ? def : it->get<std::string>();
}
bool Bool(const json& j, const char* key, bool def) {
  auto it = j.find(key);
  return (it == j.end() || it->is_null()) ? def : it->get<bool>();
}
int Int(const json& j, const char* key, int def, int min, const std::string& what) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  const int v = JsonInt(*it, what);
  if (v < min)
    throw Error(what + " must be at least " + std::to_string(min) + ", got " + std::to_string(v));
  return v;
}
std::string Type(const json& j) {
  if (!j.is_object() || !j.contains("type")) throw Error("component without a \"type\": " + j.dump().substr(0, 80));
  return j.at("type").get<std::string>();
}

Pattern::Pattern(const json& j) {
  if (j.contains("String")) {
    literal_ = j.at("String").get<std::string>();
  } else if (j.contains("Regex")) {
    regex_ = std::make_unique<UnicodeRegex>(j.at("Regex").get<std::string>());
  } else {
    throw Error("pattern must have \"String\" or \"Regex\": " + j.dump());
  }
}

Pattern::~Pattern() = default;

std::vector<std::pair<size_t, size_t>> Pattern::Find(const std::string& s) const {
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

Behavior ParseBehavior(const std::string& b) {
  if (b == "Removed") return Behavior::kRemoved;
  if (b == "Isolated") return Behavior::kIsolated;
  if (b == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return Behavior::kMergedWithNext;
  if (b == "Contiguous") return Behavior::kContiguous;
  throw Error("unknown split behavior \"" + b + "\"");
}

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

uint32_t SingleChar(const json& j, const char* key, const std::string& what, const std::string& def) {
  std::string s = Str(j, key, def);
  unicode::CheckUtf8(s, what + " " + key);
  std::vector<uint32_t> cps = unicode::ToCodepoints(s);
  if (cps.size() != 1) throw Error(what + " " + key + " must be one character, got \"" + s + "\"");
  return cps[0];
}

}  // namespace sq::tokenizer_parts
