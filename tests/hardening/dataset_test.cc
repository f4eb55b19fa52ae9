// The text splitter on inputs found while building the bad-input table and the fuzzers.
#include <catch2/catch.hpp>

#include "calib/dataset.h"
#include "core/error.h"

using namespace sq;
using Catch::Matchers::Contains;

namespace {

// One token per byte (ids 3..258), BOS 1: the splitter's logic without a real vocabulary.
class ByteTokenizer : public Tokenizer {
 public:
  std::vector<int> Encode(std::string_view text, bool) const override {
    std::vector<int> ids;
    for (unsigned char c : text) ids.push_back(c + 3);
    return ids;
  }
  std::string Decode(std::span<const int>, bool) const override { return ""; }
  std::string TokenText(int id) const override { return std::to_string(id); }
  int bos_id() const override { return 1; }
  int eos_id() const override { return 2; }
  int vocab_size() const override { return 259; }
};

}  // namespace

TEST_CASE("only empty documents between <|endoftext|> lines is an error", "[hardening]") {
  const ByteTokenizer tok;
  WindowOptions opt;
  opt.ctx = 16;
  // Before the fix this was scored as a stream holding the literal separator text.
  REQUIRE_THROWS_WITH(MakeWindows("\n<|endoftext|>\n  \n<|endoftext|>\n", tok, opt, "d.txt"),
                      Contains("d.txt: every document between <|endoftext|> lines is empty"));
  // One non-empty document is fine: BOS + its 2 bytes.
  const auto w = MakeWindows("<|endoftext|>\nab\n<|endoftext|>\n", tok, opt, "d.txt");
  REQUIRE(w.size() == 1);
  REQUIRE(w[0].tokens == std::vector<int>{1, 'a' + 3, 'b' + 3});
  // A stream without separators still works, in windows of ctx.
  const auto s = MakeWindows(std::string(40, 'x'), tok, opt, "d.txt");
  REQUIRE(s.size() == 3);
  REQUIRE(s[0].tokens.size() == 16);
}
