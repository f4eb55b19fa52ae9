// libFuzzer target: the tokenizer regex compiler and matcher under a depth-and-budget harness.
// The input is "PATTERN\nTEXT"; the first byte, when it is a digit d, repeats TEXT 4^d times
// (text capped at 4 KiB: long inputs for backtracking). Compiling must refuse deep nesting and huge
// repeats with an Error; matching must end within its step budget (an Error past it), never
// hang (libFuzzer's -timeout catches that) or crash; every match must lie inside the text.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"
#include "formats/unicode.h"
#include "formats/unicode_regex.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  int copies = 1;
  if (!in.empty() && in[0] >= '0' && in[0] <= '9') {
    copies = 1 << (2 * std::min(in[0] - '0', 9));
    in.erase(0, 1);
  }
  const size_t nl = in.find('\n');
  const std::string pattern = in.substr(0, nl);
  std::string unit = nl == std::string::npos ? "aaaaaaaaaaaaaaaaaaaaaaaaaaaaab" : in.substr(nl + 1);
  try {
    const sq::UnicodeRegex re(pattern);
    sq::unicode::CheckUtf8(unit, "fuzz text");
    std::string text;
    for (int i = 0; i < copies && text.size() < (1u << 12); ++i) text += unit;
    const std::vector<uint32_t> cps = sq::unicode::ToCodepoints(text);
    for (const auto& [b, e] : re.FindAll(cps)) {
      if (b >= e || e > cps.size()) abort();
    }
  } catch (const sq::Error&) {
  }
  return 0;
}
