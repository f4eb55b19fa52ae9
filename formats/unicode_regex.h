// A small backtracking regex engine over Unicode code points, for tokenizer pre-tokenizers.
// It covers the Oniguruma / regex-crate subset that tokenizer.json patterns use: alternation,
// groups ((...), (?:...), (?i:...), (?i)), lookahead ((?=...), (?!...)), classes with ranges,
// negation and \p{..}/\P{..}/\s/\S/\d/\D/\w/\W/\r/\n/\t/\xHH/\u{..}, '.', ^ and $, quantifiers
// ?, *, +, {m}, {m,}, {m,n} (greedy or lazy). Matching is leftmost-first like Perl/Oniguruma.
// Anything else (lookbehind, backreferences, possessive quantifiers, nested classes) is
// refused with an Error naming the pattern.
//
// Untrusted patterns (tokenizer.json) are bounded: group nesting, repeat counts and program
// size at compile time, and a step budget linear in the text at match time, so neither deep
// nesting nor catastrophic backtracking ((a+)+b on "aaaa...") can crash or hang; each limit
// is an Error naming the pattern.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sq {

inline constexpr int kMaxRegexDepth = 32;
inline constexpr int kMaxRegexRepeat = 1000;
inline constexpr size_t kMaxRegexProgram = 100000;
// Steps (instructions executed, backtracking included) allowed per scan: the GPT-2 / Llama 3
// patterns need a few dozen per code point.
inline constexpr uint64_t kRegexBaseSteps = 1000000;
inline constexpr uint64_t kRegexStepsPerCodePoint = 1000;

class UnicodeRegex {
 public:
  explicit UnicodeRegex(std::string_view pattern);

  // End (exclusive) of the leftmost-first match that starts exactly at `pos`, or -1.
  long MatchAt(const std::vector<uint32_t>& text, size_t pos) const;
  // The same, spending at most `*budget` steps (decremented); throws Error when it runs out.
  long MatchAt(const std::vector<uint32_t>& text, size_t pos, uint64_t* budget) const;
  static uint64_t StepBudget(size_t code_points);
  // All non-overlapping matches [start, end) in code point indices, scanning left to right.
  std::vector<std::pair<size_t, size_t>> FindAll(const std::vector<uint32_t>& text) const;
  const std::string& pattern() const { return pattern_; }

  struct ClassItem {
    enum Kind { kRange, kCategory, kSpace, kDigit, kWord } kind;
    uint32_t lo = 0, hi = 0;
    std::string category;
    bool negated = false;
  };
  struct CharClass {
    std::vector<ClassItem> items;
    bool negated = false;
    bool fold = false;
  };
  struct Inst {
    enum Op { kChar, kClass, kAny, kSplit, kJmp, kLook, kBegin, kEnd, kMatch } op;
    uint32_t cp = 0;  // kChar
    bool fold = false;
    int x = 0, y = 0;  // kSplit: preferred x, then y; kJmp: x; kClass: class index;
                       // kLook: sub-program start x, negated if y
  };

 private:
  bool Run(int pc, const std::vector<uint32_t>& text, size_t pos, size_t* end,
           uint64_t* budget) const;
  bool ClassMatches(const CharClass& c, uint32_t cp) const;

  std::string pattern_;
  std::vector<Inst> prog_;
  std::vector<CharClass> classes_;
  friend class RegexCompiler;
};

}  // namespace sq
