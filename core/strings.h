// Splitting the lists flags take ("lm_head,down", "rotate+sink-aware", "1024x1024,4096x4096").
#pragma once

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

}  // namespace sq
