// Text -> token windows, with the scoring convention every command shares:
// - If the text has lines `<|endoftext|>`, each document between them (trimmed of leading and
//   trailing white space) is one window: BOS + its tokens, truncated at `ctx`.
// - Otherwise the whole text is tokenized once and cut into consecutive windows of BOS +
//   (ctx - 1) tokens (ctx tokens when the tokenizer has no BOS), so every token is predicted
//   exactly once.
// In both, every text token is scored (predicted from the tokens before it in its window).
#pragma once

#include <span>
#include <string>
#include <vector>

#include "formats/tokenizer.h"

namespace sq {

struct Window {
  std::vector<int> tokens;  // model input, positions 0..n-1
  int first_target = 1;     // tokens[i] for i >= first_target are scored (predicted from i-1)
  int targets() const { return static_cast<int>(tokens.size()) - first_target; }
};

// Reads a UTF-8 text file; throws Error naming the file if it is missing, empty or not UTF-8.
std::string ReadTextFile(const std::string& path);

// Throws Error when --calib and --data name the same file (by identity: symlinks, hard links,
// other spellings): quantized numbers measured on calibration text would look too good.
void CheckCalibIsNotData(const std::string& calib, const std::string& data);
// Splits on lines that are exactly `<|endoftext|>`; returns the trimmed non-empty documents.
// A text without such lines gives no documents (empty vector).
std::vector<std::string> SplitDocuments(const std::string& text);

// The token sequences of the first `max` windows (all when max < 0), for the layer-major runner.
std::vector<std::span<const int>> TokenSpans(const std::vector<Window>& windows, int max = -1);

struct WindowOptions {
  int ctx = 512;
  long max_tokens = 0;  // stop once this many tokens are scored (0: all)
};
// `source` names the file in error messages.
std::vector<Window> MakeWindows(const std::string& text, const Tokenizer& tok,
                                const WindowOptions& opt, const std::string& source);

}  // namespace sq
