#include "formats/json_util.h"

#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
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

void WriteFileAtomic(const std::string& path, const std::function<void(std::ostream&)>& fill) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  try {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    Check(out.good(), "cannot create " + tmp);
    fill(out);
    out.flush();
    Check(out.good(), "write failed for " + tmp);
    out.close();
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    Check(!ec, "cannot rename " + tmp + " to " + path + ": " + ec.message());
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
}

void WriteFileAtomic(const std::string& path, const std::string& contents) {
  WriteFileAtomic(path, [&](std::ostream& out) { out.write(contents.data(), contents.size()); });
}

nlohmann::json JsonFloat(float v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  *end = '\0';
  return std::strtod(buf, nullptr);
}

}  // namespace sq
