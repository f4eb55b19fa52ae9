// libFuzzer target: tokenizer.json. A tokenizer that loads must encode and decode a fixed
// multilingual text without crashing, and every id it returns must be inside its vocab.
#include <cstdint>
#include <cstdlib>

#include "core/error.h"
#include "formats/tokenizer.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = sq::fuzz::WriteScratch("tokenizer.json", data, size);
  try {
    const auto tok = sq::LoadHfTokenizer(path);
    static const char* kTexts[] = {"Hello world", " a  b\n\tc ", "h\xC3\xA9llo \xE4\xB8\xAD\xE6\x96\x87 12345 !?",
                                   "<s></s><unk><|endoftext|>", ""};
    for (const char* t : kTexts) {
      const std::vector<int> ids = tok->Encode(t, true);
      for (int id : ids) {
        if (id < 0) abort();
        tok->TokenText(id);
      }
      tok->Decode(ids, false);
      tok->Decode(ids, true);
    }
  } catch (const sq::Error&) {
  }
  return 0;
}
