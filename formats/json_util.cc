#include "formats/json_util.h"

#include <charconv>
#include <cstdlib>
#include <limits>
#include <set>
#include <vector>

#include "core/error.h"
#include "core/input_file.h"

namespace sq {

namespace {

// Deepest bracket nesting outside strings, scanning no further than one past `limit` (cheap,
// linear, and done before nlohmann builds anything, so depth costs neither stack nor memory).
int NestingDepth(const std::string& text, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') deepest = std::max(deepest, ++depth);
    else if (c == ']' || c == '}') --depth;
    if (deepest > limit) break;
  }
  return deepest;
}

// Refuses an object key seen twice in the same object: nlohmann keeps only one of them, so a
// duplicated tensor name or config key would otherwise be resolved silently.
class DuplicateKeyCheck {
 public:
  explicit DuplicateKeyCheck(const std::string& source) : source_(source) {}
  bool operator()(int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (event == E::object_start) keys_.resize(depth + 1), keys_[depth].clear();
    if (event == E::key) {
      auto& seen = keys_[depth - 1];
      const std::string& k = parsed.get_ref<const std::string&>();
      if (!seen.insert(k).second) {
        throw Error(source_ + ": key \"" + k.substr(0, 200) + "\" appears twice in one object");
      }
    }
    return true;
  }

 private:
  const std::string& source_;
  std::vector<std::set<std::string>> keys_;
};

}  // namespace

nlohmann::json ParseJson(const std::string& text, const std::string& source) {
  if (NestingDepth(text, kMaxJsonDepth) > kMaxJsonDepth) {
    throw Error(source + ": JSON nested deeper than " + std::to_string(kMaxJsonDepth) +
                " levels (corrupt or hostile)");
  }
  try {
    return nlohmann::json::parse(text, DuplicateKeyCheck(source));
  } catch (const nlohmann::json::exception& e) {
    throw Error(source + ": malformed JSON: " + e.what());
  }
}

nlohmann::json ReadJsonFile(const std::string& path) {
  return ParseJson(ReadInputFile(path), path);
}

int JsonInt(const nlohmann::json& v, const std::string& what) {
  const bool in_range =
      (v.is_number_unsigned() && v.get<uint64_t>() <= uint64_t{std::numeric_limits<int>::max()}) ||
      (v.is_number_integer() && !v.is_number_unsigned() &&
       v.get<int64_t>() >= std::numeric_limits<int>::min() &&
       v.get<int64_t>() <= std::numeric_limits<int>::max());
  if (!in_range) throw Error(what + " must be an integer, got " + v.dump().substr(0, 64));
  return static_cast<int>(v.get<int64_t>());
}

nlohmann::json JsonFloat(float v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  *end = '\0';
  return std::strtod(buf, nullptr);
}

}  // namespace sq
