// llama2.c's tokenizer.bin: int32 max_token_length, then per token float32 score, int32 len
// and len bytes. Encoding follows llama2.c (and SentencePiece BPE): a dummy-prefix space,
// each code point looked up or split into byte tokens <0x00>..<0xFF> at ids 3..258, then
// repeated merging of the adjacent pair whose concatenation has the highest score.
// Entry points: LoadLlama2cTokenizer / WriteHfTokenizerFromLlama2c in formats/tokenizer.h.
#pragma once

#include <string>
#include <vector>

namespace sq {

struct Llama2cVocab {
  std::vector<std::string> pieces;  // raw bytes as stored ("\n<s>\n" for BOS)
  std::vector<float> scores;
  int max_token_length = 0;
};

// Throws Error naming `path` for a truncated file, a token past the end, or a token count
// that does not match `vocab_size`.
Llama2cVocab ReadLlama2cVocab(const std::string& path, int vocab_size);

constexpr int kLlama2cUnk = 0, kLlama2cBos = 1, kLlama2cEos = 2, kLlama2cFirstByte = 3;

}  // namespace sq
