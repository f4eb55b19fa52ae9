// libFuzzer target: config.json text -> ModelConfig, and a config that parses must write back
// and parse to the same sizes.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "formats/hf_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const nlohmann::json j = sq::ParseJson(text, "config.json");
    const sq::ModelConfig c = sq::HfConfigFromJson(j, "config.json");
    nlohmann::json back;
    try {
      back = nlohmann::json::parse(sq::HfConfigToJson(c).dump());
    } catch (const sq::Error&) {
      return 0;  // no HF form (documented)
    }
    const sq::ModelConfig c2 = sq::HfConfigFromJson(back, "round trip");
    if (c2.hidden != c.hidden || c2.vocab != c.vocab || c2.n_layers != c.n_layers) abort();
  } catch (const sq::Error&) {
  }
  return 0;
}
