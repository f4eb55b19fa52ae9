// `sinkquant tokenize`: token ids of stdin as one compact JSON array, e.g. [1,15043,3186].
#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>

#include "cli/command.h"
#include "core/error.h"
#include "formats/tokenizer.h"

namespace {

bool IsJsonName(const std::string& p) {
  return p.size() >= 5 && p.compare(p.size() - 5, 5, ".json") == 0;
}

int RunTokenize(sq::Args& a) {
  const std::string path = a.Required("tokenizer");
  const bool no_special = a.Flag("no-special");
  const bool has_vocab = a.Has("vocab");
  const int vocab = a.Int("vocab", 0, 0, 1 << 22);
  a.Finish();
  if (has_vocab && IsJsonName(path)) {
    throw sq::Error("--vocab applies only to llama2.c tokenizer.bin files, not " + path);
  }
  if (has_vocab && vocab <= 0) throw sq::Error("--vocab must be positive, got " + std::to_string(vocab));
  std::unique_ptr<sq::Tokenizer> tok;
  try {
    tok = sq::LoadTokenizer(path, vocab);
  } catch (const sq::Error& e) {
    if (has_vocab) throw;
    throw sq::Error(std::string(e.what()) + " (pass --vocab N for a llama2.c tokenizer.bin)");
  }
  std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  std::string out = "[";
  for (int id : tok->Encode(text, !no_special)) {
    if (out.size() > 1) out += ',';
    out += std::to_string(id);
  }
  out += "]\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

const bool kRegistered = sq::RegisterCommand(
    {"tokenize", "print the token ids of stdin as a JSON array",
     "--tokenizer PATH (tokenizer.json or llama2.c .bin) [--no-special] [--vocab N (required "
     "for .bin)]",
     RunTokenize});

}  // namespace
