// The stages of a Hugging Face tokenizer.json around the model: normalizers
// (formats/tokenizer_pipeline.cc), pre-tokenizers (tokenizer_pretokenizers.cc) and decoders
// (tokenizer_decoders.cc), built from their JSON. Each follows the semantics of the
// `tokenizers` Rust crate 0.22; unsupported types are refused with an Error.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace sq {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual std::string Apply(const std::string& s) const = 0;
};

// A piece of text on its way to the model. `at_start`: it begins at offset 0 of the input
// (Metaspace's prepend_scheme "first" only prepends there).
struct Piece {
  std::string text;
  bool at_start = false;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void Apply(std::vector<Piece>& pieces) const = 0;  // empty pieces are dropped
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Rewrites the token strings; the caller concatenates what is left.
  virtual void Apply(std::vector<std::string>& tokens) const = 0;
};

// Each returns nullptr for a JSON null and throws Error for an unsupported type.
std::unique_ptr<Normalizer> MakeNormalizer(const nlohmann::json& j);
std::unique_ptr<PreTokenizer> MakePreTokenizer(const nlohmann::json& j);
std::unique_ptr<Decoder> MakeDecoder(const nlohmann::json& j);

// GPT-2's byte -> printable code point table (bytes_to_unicode) and its inverse (-1 if none).
uint32_t ByteToUnicode(unsigned char b);
int UnicodeToByte(uint32_t cp);
std::string ByteLevelMap(std::string_view bytes);  // every byte through ByteToUnicode
// The GPT-2 pre-tokenizer regex that ByteLevel(use_regex) applies.
extern const char kGpt2Pattern[];

}  // namespace sq
