#include "calib/dataset.h"

#include <string>
#include <vector>

#include "core/error.h"
#include "core/input_file.h"

namespace sq {

namespace {

// Returns the byte offset of the first invalid UTF-8 sequence, or -1 when `s` is valid.
long FirstInvalidUtf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    int len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (len == 0 || i + len > n) return static_cast<long>(i);
    for (int k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return static_cast<long>(i);
    }
    const uint32_t cp = len == 1 ? c
                        : len == 2 ? ((c & 0x1fu) << 6) | (p[i + 1] & 0x3fu)
                        : len == 3 ? ((c & 0x0fu) << 12) | ((p[i + 1] & 0x3fu) << 6) | (p[i + 2] & 0x3fu)
                                   : ((c & 0x07u) << 18) | ((p[i + 1] & 0x3fu) << 12) |
                                         ((p[i + 2] & 0x3fu) << 6) | (p[i + 3] & 0x3fu);
    const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return static_cast<long>(i);  // overlong, out of range or a surrogate
    }
    i += len;
  }
  return -1;
}

std::string Trim(const std::string& s) {
  const char* ws = " \t\r\n\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// The lines of `text`, ended by "\n", "\r\n" or a lone "\r" (old Mac files have no "\n").
std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\n' && text[i] != '\r') continue;
    lines.push_back(text.substr(start, i - start));
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
    start = i + 1;
  }
  if (start < text.size()) lines.push_back(text.substr(start));
  return lines;
}

// True when some line of `text` is `<|endoftext|>` (SplitDocuments' separator).
bool HasSeparatorLine(const std::string& text) {
  for (const std::string& line : Lines(text)) {
    if (Trim(line) == "<|endoftext|>") return true;
  }
  return false;
}

}  // namespace

std::string ReadTextFile(const std::string& path) {
  std::string text = ReadInputFile(path);
  Check(!Trim(text).empty(), path + ": data file is empty");
  const long bad = FirstInvalidUtf8(text);
  Check(bad < 0, path + ": not valid UTF-8 at byte " + std::to_string(bad));
  return text;
}

void CheckCalibIsNotData(const std::string& calib, const std::string& data) {
  Check(calib.empty() || !SameFile(calib, data),
        "--calib " + calib + " and --data " + data +
            " are the same file: the quantized numbers would be measured on calibration text");
}

std::vector<std::string> SplitDocuments(const std::string& text) {
  static const std::string kSep = "<|endoftext|>";
  std::vector<std::string> docs;
  bool found = false;
  std::string current;
  for (const std::string& line : Lines(text)) {
    if (Trim(line) == kSep) {
      found = true;
      if (auto d = Trim(current); !d.empty()) docs.push_back(d);
      current.clear();
    } else {
      current += line + "\n";
    }
  }
  if (!found) return {};
  if (auto d = Trim(current); !d.empty()) docs.push_back(d);
  return docs;
}

std::vector<Window> MakeWindows(const std::string& text, const Tokenizer& tok,
                                const WindowOptions& opt, const std::string& source) {
  Check(opt.ctx >= 2, "--ctx must be at least 2, got " + std::to_string(opt.ctx));
  Check(opt.max_tokens >= 0, "--max-tokens must be positive");
  const int bos = tok.bos_id();
  std::vector<Window> windows;
  long scored = 0;
  auto full = [&] { return opt.max_tokens > 0 && scored >= opt.max_tokens; };
  auto add = [&](std::vector<int> tokens, int first_target) {
    if (opt.max_tokens > 0) {  // trim the last window so exactly max_tokens are scored
      const long room = opt.max_tokens - scored + first_target;
      if (static_cast<long>(tokens.size()) > room) tokens.resize(room);
    }
    Window w{std::move(tokens), first_target};
    if (w.targets() <= 0) return;
    scored += w.targets();
    windows.push_back(std::move(w));
  };

  const std::vector<std::string> docs = SplitDocuments(text);
  for (const std::string& doc : docs) {  // document mode
    if (full()) break;
    std::vector<int> ids = tok.Encode(doc, /*add_special=*/false);
    std::vector<int> tokens;
    if (bos >= 0) tokens.push_back(bos);
    tokens.insert(tokens.end(), ids.begin(), ids.end());
    if (static_cast<int>(tokens.size()) > opt.ctx) tokens.resize(opt.ctx);
    add(std::move(tokens), 1);
  }
  // Separator lines with nothing between them: not a stream that happens to contain them.
  Check(!docs.empty() || !HasSeparatorLine(text),
        source + ": every document between <|endoftext|> lines is empty");
  if (docs.empty()) {  // one stream cut into consecutive windows
    const std::vector<int> ids = tok.Encode(text, /*add_special=*/false);
    const int body = bos >= 0 ? opt.ctx - 1 : opt.ctx;
    for (size_t start = 0; start < ids.size() && !full(); start += body) {
      std::vector<int> tokens;
      if (bos >= 0) tokens.push_back(bos);
      const size_t end = std::min(ids.size(), start + body);
      tokens.insert(tokens.end(), ids.begin() + start, ids.begin() + end);
      // Without BOS the first token of each window has no context and is not scored.
      add(std::move(tokens), 1);
    }
  }
  Check(!windows.empty(), source + ": no tokens to score (text too short for a window)");
  return windows;
}

std::vector<std::span<const int>> TokenSpans(const std::vector<Window>& windows, int max) {
  const size_t n = max < 0 ? windows.size() : std::min<size_t>(max, windows.size());
  std::vector<std::span<const int>> out;
  for (size_t i = 0; i < n; ++i) out.emplace_back(windows[i].tokens);
  return out;
}

}  // namespace sq
