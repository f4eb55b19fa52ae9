// Writes a hand-made tokenizer.json (and tokenizer_config.json) to a fresh folder and loads it.
#pragma once

#include <fstream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "formats/tokenizer.h"
#include "tests/test_paths.h"

namespace sq::test {

inline std::unique_ptr<Tokenizer> LoadTokenizerJson(const std::string& name, const nlohmann::json& j,
                                                    const nlohmann::json& config = nullptr) {
  std::string dir = TempDir(name);
  std::ofstream(dir + "/tokenizer.json") << j.dump();
  if (!config.is_null()) std::ofstream(dir + "/tokenizer_config.json") << config.dump();
  return LoadHfTokenizer(dir + "/tokenizer.json");
}

}  // namespace sq::test
