#include "formats/json_util.h"

#include <charconv>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/error.h"

namespace sq {

nlohmann::json ParseJson(const std::string& text, const std::string& source) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(source + ": malformed JSON: " + e.what());
  }
}

nlohmann::json ReadJsonFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  Check(in.good(), "cannot open " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseJson(ss.str(), path);
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
