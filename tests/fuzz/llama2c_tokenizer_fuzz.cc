// libFuzzer target: a llama2.c tokenizer.bin. The first two input bytes give the vocab size
// the model header would claim (1..65536), the rest is the file. A tokenizer that loads must
// encode/decode a fixed text with ids inside its vocab.
#include <cstdint>
#include <cstdlib>

#include "core/error.h"
#include "formats/tokenizer.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const int vocab = 1 + (data[0] | (data[1] << 8));
  const std::string path = sq::fuzz::WriteScratch("tokenizer.bin", data + 2, size - 2);
  try {
    const auto tok = sq::LoadLlama2cTokenizer(path, vocab);
    for (const char* t : {"Once upon a time", "h\xC3\xA9llo \xE4\xB8\xAD\n\t  x", ""}) {
      const std::vector<int> ids = tok->Encode(t, true);
      for (int id : ids) {
        if (id < 0 || id >= tok->vocab_size()) abort();
        tok->TokenText(id);
      }
      tok->Decode(ids, false);
      tok->Decode(ids, true);
    }
  } catch (const sq::Error&) {
  }
  return 0;
}
