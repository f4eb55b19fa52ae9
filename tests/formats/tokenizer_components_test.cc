// Tokenizer pipeline parts that the real fixtures do not exercise, on small hand-made
// tokenizer.json files whose expected ids follow from the crate's rules by hand.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "formats/tokenizer.h"
#include "formats/tokenizer_pipeline.h"
#include "formats/unicode.h"
#include "tests/formats/hf_tokenizer_fixture.h"

using namespace sq;
using json = nlohmann::json;
using Ids = std::vector<int>;

namespace {

const std::string kMeta = "\xE2\x96\x81";  // '▁'

std::unique_ptr<Tokenizer> Load(const std::string& name, const json& j, const json& config = nullptr) {
  return test::LoadTokenizerJson(name, j, config);
}

// A small SentencePiece-style model: "▁hi" is reachable by merges, "hi" only by ignore_merges.
json MetaspaceTokenizer(const std::string& scheme, bool split, bool fuse_unk, bool ignore_merges) {
  json vocab = {{kMeta, 0}, {"h", 1}, {"i", 2}, {kMeta + "h", 3}, {kMeta + "hi", 4},
                {"<unk>", 5}, {"<x>", 7}, {"hi", 8}};
  return {{"added_tokens", {{{"id", 7}, {"content", "<x>"}, {"special", true}, {"normalized", false}}}},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "Metaspace"}, {"replacement", kMeta},
                             {"prepend_scheme", scheme}, {"split", split}}},
          {"post_processor", nullptr},
          {"decoder", {{"type", "Metaspace"}, {"replacement", kMeta}, {"prepend_scheme", scheme}}},
          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"unk_token", "<unk>"},
                     {"fuse_unk", fuse_unk}, {"ignore_merges", ignore_merges},
                     {"merges", json::array({json::array({kMeta, "h"}), json::array({kMeta + "h", "i"})})}}}};
}

// Byte-level model: byte b has id b; extra merged tokens get ids from 256 on.
json ByteLevelTokenizer(const json& pre_tokenizer, const json& normalizer,
                        const std::vector<std::pair<std::string, std::string>>& merges) {
  json vocab = json::object();
  auto mapped = [](const std::string& s) {
    std::string out;
    for (unsigned char c : s) unicode::AppendUtf8(out, ByteToUnicode(c));
    return out;
  };
  for (int b = 0; b < 256; ++b) vocab[mapped(std::string(1, static_cast<char>(b)))] = b;
  json merge_list = json::array();
  int next = 256;
  for (auto& [a, b] : merges) {
    vocab[mapped(a + b)] = next++;
    merge_list.push_back(mapped(a) + " " + mapped(b));  // the "a b" string form
  }
  return {{"added_tokens", json::array()}, {"normalizer", normalizer},
          {"pre_tokenizer", pre_tokenizer}, {"post_processor", nullptr},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merge_list}}}};
}

Ids Bytes(const std::string& s) {
  Ids out;
  for (unsigned char c : s) out.push_back(c);
  return out;
}

// Byte mapping only, no regex split: the whole text is one word.
const json kByteLevelOnly = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}};

}  // namespace

TEST_CASE("Metaspace prepend schemes, split, fuse_unk and ignore_merges", "[formats][tokenizer]") {
  auto always = Load("ms_always", MetaspaceTokenizer("always", true, true, false));
  CHECK(always->Encode("hi hi", false) == Ids{4, 4});
  CHECK(always->Encode("<x>hi", false) == Ids{7, 4});       // "always": every piece
  CHECK(always->Encode("hqqqi", false) == Ids{3, 5, 2});    // unknowns fused into one <unk>
  CHECK(always->Decode(Ids{4, 4}, false) == "hi hi");
  auto first = Load("ms_first", MetaspaceTokenizer("first", true, false, false));
  CHECK(first->Encode("hi<x>hi", false) == Ids{4, 7, 1, 2});  // only the text at offset 0
  CHECK(first->Encode("<x>hi", false) == Ids{7, 1, 2});
  CHECK(first->Encode("hqqqi", false) == Ids{3, 5, 5, 5, 2});
  auto never = Load("ms_never", MetaspaceTokenizer("never", false, false, false));
  CHECK(never->Encode("hi", false) == Ids{1, 2});
  CHECK(never->Encode("hi hi", false) == Ids{1, 2, 4});  // split false: one word "hi▁hi"
  auto ignore = Load("ms_ignore", MetaspaceTokenizer("never", true, false, true));
  CHECK(ignore->Encode("hi", false) == Ids{8});  // the word is in the vocab: no merging
}

TEST_CASE("Split pre-tokenizer with the Llama-3 regex keeps merges inside pieces", "[formats][tokenizer]") {
  json pre = {{"type", "Sequence"},
              {"pretokenizers",
               {{{"type", "Split"},
                 {"pattern", {{"Regex", R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}}},
                 {"behavior", "Isolated"}, {"invert", false}},
                {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
  auto tok = Load("split_l3", ByteLevelTokenizer(pre, nullptr, {{"M", " "}, {" ", "f"}}));
  // Pieces "I", "'M", " fine": the first-ranked merge "M" + " " must not cross the boundary.
  CHECK(tok->Encode("I'M fine", false) == Ids{'I', '\'', 'M', 257, 'i', 'n', 'e'});
  CHECK(tok->Decode(tok->Encode("I'M fine", false), false) == "I'M fine");
  // Digits go in groups of at most three: "12345" -> "123", "45"; no merges apply.
  CHECK(tok->Encode("12345", false) == Bytes("12345"));
  auto whole = Load("split_none", ByteLevelTokenizer(kByteLevelOnly, nullptr, {{"M", " "}, {" ", "f"}}));
  CHECK(whole->Encode("I'M fine", false) == Ids{'I', '\'', 256, 'f', 'i', 'n', 'e'});
}

TEST_CASE("Strip, Lowercase and NFKC normalizers in a Sequence", "[formats][tokenizer]") {
  json norm = {{"type", "Sequence"},
               {"normalizers", {{{"type", "Strip"}, {"strip_left", true}, {"strip_right", true}},
                                {{"type", "Lowercase"}},
                                {{"type", "NFKC"}}}}};
  auto tok = Load("norms", ByteLevelTokenizer(kByteLevelOnly, norm, {}));
  CHECK(tok->Encode("  \xC3\x85" "B \xEF\xAC\x81\t ", false) == Bytes("\xC3\xA5" "b fi"));
  json bad = ByteLevelTokenizer(kByteLevelOnly, {{"type", "Precompiled"}, {"precompiled_charsmap", ""}}, {});
  CHECK_THROWS_WITH(Load("norm_bad", bad), Catch::Contains("Precompiled normalizer: precompiled_charsmap is 0 bytes") &&
                                               Catch::Contains("tokenizer.json"));
}

TEST_CASE("added tokens: lstrip/rstrip, longest match first, add_bos_token from tokenizer_config", "[formats][tokenizer]") {
  json j = ByteLevelTokenizer(kByteLevelOnly, nullptr, {});
  j["added_tokens"] = {
      {{"id", 300}, {"content", "<m>"}, {"special", true}, {"normalized", false},
       {"lstrip", true}, {"rstrip", true}},
      {{"id", 301}, {"content", "<m>>"}, {"special", false}, {"normalized", false}},
      {{"id", 302}, {"content", "<s>"}, {"special", true}, {"normalized", false}}};
  auto plain = Load("added", j);
  CHECK(plain->Encode("a <m> b", true) == Ids{'a', 300, 'b'});
  CHECK(plain->Encode("a <m>> b", false) == Ids{'a', ' ', 301, ' ', 'b'});
  CHECK(plain->Decode(Ids{'a', 300, 'b', 302}, true) == "ab");
  CHECK(plain->Decode(Ids{'a', 300, 'b'}, false) == "a<m>b");
  CHECK(plain->bos_id() == -1);
  auto with_bos = Load("added_bos", j, {{"add_bos_token", true}, {"bos_token", "<s>"},
                                        {"eos_token", {{"content", "<m>"}}}});
  CHECK(with_bos->Encode("a", true) == Ids{302, 'a'});
  CHECK(with_bos->Encode("a", false) == Ids{'a'});
  CHECK(with_bos->bos_id() == 302);
  CHECK(with_bos->eos_id() == 300);
}
