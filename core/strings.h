// The lists flags take ("lm_head,down", "rotate+sink-aware", "1024x1024,4096x4096"): splitting
// them, and looking an item up.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

namespace sq {

// Every piece between separators, empty ones included ("a,,b" -> a, "", b; "" -> one ""), so
// each caller decides whether an empty item is an error or skipped.
inline std::vector<std::string> SplitList(const std::string& s, char sep) {
  std::vector<std::string> out;
  for (size_t start = 0;;) {
    const size_t end = s.find(sep, start);
    out.push_back(s.substr(start, end - start));
    if (end == std::string::npos) return out;
    start = end + 1;
  }
}

// Whether a list (of recipe steps, of modifiers) holds `s`.
inline bool Has(const std::vector<std::string>& list, const std::string& s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

}  // namespace sq
