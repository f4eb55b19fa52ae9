// Tokenizers: text <-> token ids. Two formats: Hugging Face tokenizer.json (BPE models only:
// byte-level like GPT-2 / Llama-3 / Qwen, SentencePiece-style with byte fallback like
// Llama-2 / Mistral) and llama2.c's tokenizer.bin. All inputs are checked where they enter:
// bad files and non-UTF-8 text throw sq::Error naming the file.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sq {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // add_special: add what the post-processor / BOS rule adds (e.g. BOS for Llama-2).
  virtual std::vector<int> Encode(std::string_view text, bool add_special) const = 0;
  virtual std::string Decode(std::span<const int> ids, bool skip_special) const = 0;
  virtual std::string TokenText(int id) const = 0;  // printable piece for reports ("<0x0A>" ok)
  virtual int bos_id() const = 0;  // -1 if none
  virtual int eos_id() const = 0;
  virtual int vocab_size() const = 0;
};

// tokenizer.json (+ tokenizer_config.json beside it, if present, for add_bos_token etc.)
std::unique_ptr<Tokenizer> LoadHfTokenizer(const std::string& tokenizer_json_path);
// llama2.c tokenizer.bin; vocab_size comes from the model header
std::unique_ptr<Tokenizer> LoadLlama2cTokenizer(const std::string& path, int vocab_size);
// Writes an HF tokenizer.json (BPE, byte_fallback, ▁ normalizer, TemplateProcessing BOS) that
// encodes exactly like the llama2.c tokenizer (merges ordered by the score of the merged piece,
// as HF's sentencepiece conversion does). Used by `sinkquant convert`.
void WriteHfTokenizerFromLlama2c(const std::string& tokenizer_bin, int vocab_size,
                                 const std::string& out_json_path);
// Picks by file name/content: a .json is HF, otherwise llama2.c (needs vocab_size).
std::unique_ptr<Tokenizer> LoadTokenizer(const std::string& path, int vocab_size);

}  // namespace sq
