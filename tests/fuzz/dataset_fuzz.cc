// libFuzzer target: the calibration/eval text path. Byte 0 picks the context (2..65), byte 1
// max_tokens (0..255), the rest is the data file: ReadTextFile, SplitDocuments, MakeWindows with
// a byte tokenizer (id = byte + 3, BOS 1). Windows must respect ctx and max_tokens.
#include <cstdint>
#include <cstdlib>

#include "calib/dataset.h"
#include "core/error.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

// One token per byte: ids 3..258, BOS 1, EOS 2.
class ByteTokenizer : public sq::Tokenizer {
 public:
  std::vector<int> Encode(std::string_view text, bool add_special) const override {
    std::vector<int> ids;
    if (add_special) ids.push_back(1);
    for (unsigned char c : text) ids.push_back(c + 3);
    return ids;
  }
  std::string Decode(std::span<const int> ids, bool) const override {
    std::string s;
    for (int id : ids) if (id >= 3) s += static_cast<char>(id - 3);
    return s;
  }
  std::string TokenText(int id) const override { return std::to_string(id); }
  int bos_id() const override { return 1; }
  int eos_id() const override { return 2; }
  int vocab_size() const override { return 259; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  sq::WindowOptions opt;
  opt.ctx = 2 + data[0] % 64;
  opt.max_tokens = data[1];
  const std::string path = sq::fuzz::WriteScratch("data.txt", data + 2, size - 2);
  static const ByteTokenizer tok;
  try {
    const std::string text = sq::ReadTextFile(path);
    sq::SplitDocuments(text);
    const auto windows = sq::MakeWindows(text, tok, opt, path);
    long scored = 0;
    for (const sq::Window& w : windows) {
      if (static_cast<int>(w.tokens.size()) > opt.ctx || w.targets() <= 0) abort();
      scored += w.targets();
    }
    if (opt.max_tokens > 0 && scored > opt.max_tokens) abort();
  } catch (const sq::Error&) {
  }
  return 0;
}
