// libFuzzer target: the one JSON entry point (ParseJson) under a depth harness. The first byte
// wraps the rest in up to 1020 levels of brackets, so inputs both under and far over the depth
// limit are tried: a document that parses must be no deeper than kMaxJsonDepth and must hold
// no object with a repeated key; anything else must be an Error, never a crash or stack overflow.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "formats/json_util.h"

namespace {

// Depth of a parsed document, without recursion.
int Depth(const nlohmann::json& root) {
  int deepest = 0;
  std::vector<std::pair<const nlohmann::json*, int>> pending = {{&root, 0}};
  while (!pending.empty()) {
    auto [j, d] = pending.back();
    pending.pop_back();
    if (!j->is_structured()) continue;
    deepest = std::max(deepest, d + 1);
    for (const auto& kid : *j) pending.push_back({&kid, d + 1});
  }
  return deepest;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int wrap = data[0] * 4;
  const char open = (data[0] & 1) ? '[' : '{';
  std::string text;
  for (int i = 0; i < wrap; ++i) text += open == '[' ? "[" : "{\"k\":";
  text.append(reinterpret_cast<const char*>(data + 1), size - 1);
  text.append(wrap, open == '[' ? ']' : '}');
  try {
    const nlohmann::json j = sq::ParseJson(text, "fuzz.json");
    if (Depth(j) > sq::kMaxJsonDepth) abort();
  } catch (const sq::Error&) {
  }
  return 0;
}
