#include "formats/unicode.h"

#include <algorithm>

#include "core/error.h"
#include "formats/unicode_tables.h"

namespace sq::unicode {

namespace ut = unicode_tables;

namespace {

const ut::CodepointRange* FindRange(const ut::CodepointRange* table, int size, uint32_t cp) {
  const ut::CodepointRange* end = table + size;
  auto it = std::upper_bound(table, end, cp,
                             [](uint32_t c, const ut::CodepointRange& r) { return c < r.first; });
  if (it == table) return nullptr;
  --it;
  return cp <= it->last ? it : nullptr;
}

const ut::Mapping* FindMapping(const ut::Mapping* table, int size, uint32_t cp) {
  const ut::Mapping* end = table + size;
  auto it = std::lower_bound(table, end, cp,
                             [](const ut::Mapping& m, uint32_t c) { return m.cp < c; });
  return (it != end && it->cp == cp) ? it : nullptr;
}

int CombiningClass(uint32_t cp) {
  auto* r = FindRange(ut::kCombiningClass, ut::kCombiningClassSize, cp);
  return r ? r->value : 0;
}

// Hangul syllable arithmetic (Unicode 3.12).
constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

void Decompose(std::string_view s, bool compat, std::vector<uint32_t>& out) {
  const ut::Mapping* table = compat ? ut::kNfkd : ut::kNfd;
  const uint32_t* data = compat ? ut::kNfkdData : ut::kNfdData;
  int size = compat ? ut::kNfkdSize : ut::kNfdSize;
  for (uint32_t cp : ToCodepoints(s)) {
    if (cp >= kSBase && cp < kSBase + kSCount) {
      uint32_t i = cp - kSBase;
      out.push_back(kLBase + i / kNCount);
      out.push_back(kVBase + (i % kNCount) / kTCount);
      if (i % kTCount) out.push_back(kTBase + i % kTCount);
    } else if (auto* m = FindMapping(table, size, cp)) {
      out.insert(out.end(), data + m->offset, data + m->offset + m->length);
    } else {
      out.push_back(cp);
    }
  }
  // Canonical ordering: stable-sort each run of non-starters by combining class.
  for (size_t i = 0; i < out.size();) {
    if (CombiningClass(out[i]) == 0) { ++i; continue; }
    size_t j = i;
    while (j < out.size() && CombiningClass(out[j]) != 0) ++j;
    std::stable_sort(out.begin() + i, out.begin() + j, [](uint32_t a, uint32_t b) {
      return CombiningClass(a) < CombiningClass(b);
    });
    i = j;
  }
}

bool ComposePair(uint32_t a, uint32_t b, uint32_t& out) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount) {
    out = kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
    return true;
  }
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount) {
    out = a + (b - kTBase);
    return true;
  }
  const ut::Composition* end = ut::kCompose + ut::kComposeSize;
  auto it = std::lower_bound(ut::kCompose, end, std::pair(a, b),
                             [](const ut::Composition& c, std::pair<uint32_t, uint32_t> k) {
                               return std::pair(c.first, c.second) < k;
                             });
  if (it == end || it->first != a || it->second != b) return false;
  out = it->composed;
  return true;
}

// The canonical composition algorithm (Unicode 3.11, D117) over a decomposed sequence.
std::vector<uint32_t> Compose(const std::vector<uint32_t>& d) {
  std::vector<uint32_t> out;
  int starter = -1;   // index in `out` of the last starter
  int last_ccc = -1;  // class of the last character appended after the starter
  for (uint32_t cp : d) {
    int ccc = CombiningClass(cp);
    uint32_t composed;
    bool blocked = last_ccc != -1 && (last_ccc == 0 || last_ccc >= ccc);
    if (starter >= 0 && !blocked && ComposePair(out[starter], cp, composed)) {
      out[starter] = composed;
      continue;
    }
    if (ccc == 0) {
      starter = static_cast<int>(out.size());
      last_ccc = -1;
    } else {
      last_ccc = ccc;
    }
    out.push_back(cp);
  }
  return out;
}

}  // namespace

Category GetCategory(uint32_t cp) {
  auto* r = FindRange(ut::kCategory, ut::kCategorySize, cp);
  return r ? static_cast<Category>(r->value) : Category::kCn;
}

bool IsLetter(uint32_t cp) {
  if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
  Category c = GetCategory(cp);
  return c >= Category::kLu && c <= Category::kLo;
}

bool IsNumber(uint32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  Category c = GetCategory(cp);
  return c >= Category::kNd && c <= Category::kNo;
}

bool IsWhiteSpace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

bool IsMark(uint32_t cp) {
  Category c = GetCategory(cp);
  return c == Category::kMn || c == Category::kMc || c == Category::kMe;
}

bool IsPunctuation(uint32_t cp) {
  if (cp < 0x80) return (cp >= '!' && cp <= '/') || (cp >= ':' && cp <= '@') ||
                        (cp >= '[' && cp <= '`') || (cp >= '{' && cp <= '~');
  Category c = GetCategory(cp);
  return c >= Category::kPc && c <= Category::kPo;
}

int ScriptOf(uint32_t cp) {
  auto* r = FindRange(ut::kScript, ut::kScriptSize, cp);
  return r ? r->value : 0;
}

int ScriptIndex(std::string_view name) {
  for (int i = 0; i < ut::kScriptNamesSize; ++i) {
    if (name == ut::kScriptNames[i]) return i;
  }
  return -1;
}

GraphemeBreak GetGraphemeBreak(uint32_t cp) {
  auto* r = FindRange(ut::kGraphemeBreak, ut::kGraphemeBreakSize, cp);
  return r ? static_cast<GraphemeBreak>(r->value) : GraphemeBreak::kOther;
}

namespace {

// UAX #29 pair rules GB3-GB9b between classes a and b (GB11-GB13 need context, see below).
bool JoinsPair(GraphemeBreak a, GraphemeBreak b) {
  using G = GraphemeBreak;
  if (a == G::kCR && b == G::kLF) return true;                        // GB3
  auto control = [](G g) { return g == G::kCR || g == G::kLF || g == G::kControl; };
  if (control(a) || control(b)) return false;                         // GB4, GB5
  if (a == G::kL && (b == G::kL || b == G::kV || b == G::kLV || b == G::kLVT)) return true;
  if ((a == G::kLV || a == G::kV) && (b == G::kV || b == G::kT)) return true;
  if ((a == G::kLVT || a == G::kT) && b == G::kT) return true;        // GB6-GB8
  if (b == G::kExtend || b == G::kZWJ || b == G::kSpacingMark) return true;  // GB9, GB9a
  return a == G::kPrepend;                                            // GB9b
}

}  // namespace

std::vector<size_t> GraphemeStarts(const std::vector<uint32_t>& cps) {
  using G = GraphemeBreak;
  std::vector<size_t> starts;
  G prev = G::kOther;
  bool pict_run = false;  // the text so far ends in ExtPict Extend* (GB11)
  size_t ri_run = 0;      // regional indicators ending the text so far (GB12, GB13)
  for (size_t i = 0; i < cps.size(); ++i) {
    G g = GetGraphemeBreak(cps[i]);
    bool join = i > 0 && (JoinsPair(prev, g) ||
                          (prev == G::kZWJ && g == G::kExtPict && pict_run) ||
                          (prev == G::kRegionalIndicator && g == G::kRegionalIndicator &&
                           ri_run % 2 == 1));
    if (!join) starts.push_back(i);
    // pict_run stays true across Extend; ZWJ keeps it for the next code point only.
    bool after_zwj = prev == G::kZWJ;
    pict_run = g == G::kExtPict ||
               (pict_run && !after_zwj && (g == G::kExtend || g == G::kZWJ));
    ri_run = g == G::kRegionalIndicator ? ri_run + 1 : 0;
    prev = g;
  }
  return starts;
}

uint32_t SimpleLower(uint32_t cp) {
  if (cp < 0x80) return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
  auto* m = FindMapping(ut::kLower, ut::kLowerSize, cp);
  return (m && m->length == 1) ? ut::kLowerData[m->offset] : cp;
}

bool CategoryMatches(std::string_view name, uint32_t cp, bool* known) {
  static const char* kNames[] = {"Cn", "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd",
                                 "Nl", "No", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm",
                                 "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co"};
  *known = true;
  std::string_view cat = kNames[static_cast<int>(GetCategory(cp))];
  if (name.size() == 1 && std::string_view("CLMNPSZ").find(name[0]) != std::string_view::npos) {
    return cat[0] == name[0];
  }
  for (const char* n : kNames) {
    if (name == n) return cat == name;
  }
  *known = false;
  return false;
}

bool DecodeUtf8(std::string_view s, size_t& pos, uint32_t& cp) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + pos;
  size_t left = s.size() - pos;
  if (left == 0) return false;
  unsigned char b0 = p[0];
  if (b0 < 0x80) { cp = b0; ++pos; return true; }
  int n;
  uint32_t min;
  if ((b0 & 0xE0) == 0xC0) { n = 2; cp = b0 & 0x1F; min = 0x80; }
  else if ((b0 & 0xF0) == 0xE0) { n = 3; cp = b0 & 0x0F; min = 0x800; }
  else if ((b0 & 0xF8) == 0xF0) { n = 4; cp = b0 & 0x07; min = 0x10000; }
  else return false;
  if (left < static_cast<size_t>(n)) return false;
  for (int i = 1; i < n; ++i) {
    if ((p[i] & 0xC0) != 0x80) return false;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
  pos += n;
  return true;
}

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

size_t FindInvalidUtf8(std::string_view s) {
  size_t pos = 0;
  uint32_t cp;
  while (pos < s.size()) {
    if (static_cast<unsigned char>(s[pos]) < 0x80) { ++pos; continue; }
    if (!DecodeUtf8(s, pos, cp)) return pos;
  }
  return std::string_view::npos;
}

void CheckUtf8(std::string_view s, const std::string& what) {
  size_t bad = FindInvalidUtf8(s);
  if (bad != std::string_view::npos) {
    throw Error(what + ": not valid UTF-8 at byte " + std::to_string(bad));
  }
}

std::vector<uint32_t> ToCodepoints(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  size_t pos = 0;
  uint32_t cp;
  while (pos < s.size()) {
    if (!DecodeUtf8(s, pos, cp)) { cp = 0xFFFD; ++pos; }  // callers validate first
    out.push_back(cp);
  }
  return out;
}

std::string FromCodepoints(const std::vector<uint32_t>& cps) {
  std::string out;
  out.reserve(cps.size());
  for (uint32_t cp : cps) AppendUtf8(out, cp);
  return out;
}

std::string Utf8Lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  uint32_t cp;
  while (pos < s.size()) {
    size_t start = pos;
    if (DecodeUtf8(s, pos, cp)) {
      out.append(s.substr(start, pos - start));
      continue;
    }
    // Skip the longest prefix of a valid sequence (at least one byte), as Rust does.
    auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
    unsigned char b0 = b(pos);
    int need = (b0 >= 0xC2 && b0 <= 0xDF) ? 2 : (b0 >= 0xE0 && b0 <= 0xEF) ? 3
               : (b0 >= 0xF0 && b0 <= 0xF4) ? 4 : 1;
    size_t i = pos + 1;
    for (int k = 1; k < need && i < s.size(); ++k, ++i) {
      unsigned char lo = 0x80, hi = 0xBF;
      if (k == 1) {
        if (b0 == 0xE0) lo = 0xA0;
        if (b0 == 0xED) hi = 0x9F;
        if (b0 == 0xF0) lo = 0x90;
        if (b0 == 0xF4) hi = 0x8F;
      }
      if (b(i) < lo || b(i) > hi) break;
    }
    pos = i;
    out += "\xEF\xBF\xBD";
  }
  return out;
}

std::string ToLower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (uint32_t cp : ToCodepoints(s)) {
    if (cp < 0x80) {
      out += static_cast<char>(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
    } else if (auto* m = FindMapping(ut::kLower, ut::kLowerSize, cp)) {
      for (uint32_t i = 0; i < m->length; ++i) AppendUtf8(out, ut::kLowerData[m->offset + i]);
    } else {
      AppendUtf8(out, cp);
    }
  }
  return out;
}

std::string Nfd(std::string_view s) {
  std::vector<uint32_t> d;
  Decompose(s, false, d);
  return FromCodepoints(d);
}

std::string Nfkd(std::string_view s) {
  std::vector<uint32_t> d;
  Decompose(s, true, d);
  return FromCodepoints(d);
}

std::string Nfc(std::string_view s) {
  std::vector<uint32_t> d;
  Decompose(s, false, d);
  return FromCodepoints(Compose(d));
}

std::string Nfkc(std::string_view s) {
  std::vector<uint32_t> d;
  Decompose(s, true, d);
  return FromCodepoints(Compose(d));
}

}  // namespace sq::unicode
