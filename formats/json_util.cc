#include "formats/json_util.h"

#include <charconv>
#include <cstdlib>
#include <fstream>
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

nlohmann::json JsonFloat(float v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  *end = '\0';
  return std::strtod(buf, nullptr);
}

}  // namespace sq
