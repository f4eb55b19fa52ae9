#include "formats/tokenizer.h"

#include <unistd.h>

#include "core/error.h"
#include "core/input_file.h"

namespace sq {

namespace {

// A .json name, or text starting with '{'. A llama2.c file starts with a small int32
// (max_token_length), whose high bytes are zero, so it is never taken for JSON.
bool LooksLikeJson(const std::string& path) {
  uint64_t size = 0;
  const int fd = OpenInputFile(path, kMaxTextInputBytes, &size);  // refuses FIFOs, devices
  char head[4] = {0, 0, 0, 0};
  const ssize_t got = ::read(fd, head, 4);
  ::close(fd);
  if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0) return true;
  if (got == 4 && head[2] == 0 && head[3] == 0) return false;
  for (char c : head) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    return c == '{';
  }
  return false;
}

}  // namespace

std::unique_ptr<Tokenizer> LoadTokenizer(const std::string& path, int vocab_size) {
  if (LooksLikeJson(path)) return LoadHfTokenizer(path);
  if (vocab_size <= 0) {
    throw Error(path + ": a llama2.c tokenizer.bin needs the vocab size from the model header");
  }
  return LoadLlama2cTokenizer(path, vocab_size);
}

}  // namespace sq
