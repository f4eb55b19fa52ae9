// The Hugging Face tokenizer pieces that the reference fixtures do not use: pre-tokenizers,
// normalizers, the Unigram / WordPiece / WordLevel models and their decoders, each on a
// hand-made tokenizer.json. Every expectation is derived by hand from the `tokenizers` crate's
// rules; the derivation sits beside the check.
#include <catch2/catch.hpp>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "formats/precompiled_charsmap.h"
#include "formats/tokenizer.h"
#include "formats/tokenizer_pipeline.h"
#include "formats/unicode.h"
#include "tests/formats/hf_tokenizer_fixture.h"

using namespace sq;
using json = nlohmann::json;
using Ids = std::vector<int>;
using Strings = std::vector<std::string>;

namespace {

// A WordLevel tokenizer: each pre-tokenized piece is one vocab lookup, so the ids spell out the
// pieces. `words[i]` has id i + 1, "<unk>" id 0.
json WordLevel(const Strings& words, const json& normalizer, const json& pre, const json& decoder = nullptr) {
  json vocab = {{"<unk>", 0}};
  for (size_t i = 0; i < words.size(); ++i) vocab[words[i]] = static_cast<int>(i + 1);
  return {{"added_tokens", json::array()}, {"normalizer", normalizer}, {"pre_tokenizer", pre},
          {"post_processor", nullptr}, {"decoder", decoder},
          {"model", {{"type", "WordLevel"}, {"vocab", vocab}, {"unk_token", "<unk>"}}}};
}

// The pieces a WordLevel tokenizer found, as their vocab strings.
Strings Pieces(const Tokenizer& tok, const std::string& text) {
  Strings out;
  for (int id : tok.Encode(text, false)) out.push_back(tok.TokenText(id));
  return out;
}

Strings PreTokenize(const std::string& name, const json& pre, const Strings& words, const std::string& text) {
  return Pieces(*test::LoadTokenizerJson(name, WordLevel(words, nullptr, pre)), text);
}

// A tokenizer.json with `normalizer` and no pre-tokenizer: the normalized text is one piece,
// which the vocab knows only if it is exactly `expected` (id 1).
void CheckNormalizes(const json& normalizer, const std::string& text, const std::string& expected) {
  INFO("normalizer " << normalizer.dump() << " on \"" << text << "\" gives \""
                     << MakeNormalizer(normalizer)->Apply(text) << "\"");
  auto tok = test::LoadTokenizerJson("norm", WordLevel({expected}, normalizer, nullptr));
  CHECK(tok->Encode(text, false) == Ids{1});
}

std::string Base64(const std::string& bytes) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t g = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) g |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) g |= static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[g >> 18];
    out += kAlphabet[(g >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(g >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[g & 63] : '=';
  }
  return out;
}

// A precompiled_charsmap as SentencePiece writes it: u32 trie byte size, a darts-clone double
// array over the rule keys (unit: label in bits 0-7, has-leaf bit 8, offset to the children's
// base from bit 10; a value unit has bit 31 set and sits at its node's base, label 0), then the
// NUL-terminated replacements the values point at. Bases are found by first fit.
std::string Charsmap(const std::vector<std::pair<std::string, std::string>>& rules) {
  struct Node {
    std::map<unsigned char, int> kids;
    int value = -1;
  };
  std::vector<Node> nodes(1);
  std::string pool;
  for (auto& [key, replacement] : rules) {
    int n = 0;
    for (unsigned char c : key) {
      auto it = nodes[n].kids.find(c);
      if (it == nodes[n].kids.end()) {
        nodes.push_back({});
        it = nodes[n].kids.emplace(c, static_cast<int>(nodes.size()) - 1).first;
      }
      n = it->second;
    }
    nodes[n].value = static_cast<int>(pool.size());
    pool += replacement + '\0';
  }
  std::vector<uint32_t> units(1, 0);
  std::vector<bool> used(1, true);
  std::set<size_t> bases;  // as in darts-clone, no two nodes share a base: a child's position
                           // and label then name its parent uniquely
  std::function<void(int, size_t)> place = [&](int n, size_t at) {
    std::vector<unsigned> labels;
    if (nodes[n].value >= 0) labels.push_back(0);
    for (auto& kid : nodes[n].kids) labels.push_back(kid.first);
    if (labels.empty()) return;
    size_t base = 1;
    auto fits = [&](size_t b) {
      if (bases.count(b)) return false;
      for (unsigned c : labels) {
        if ((b ^ c) < used.size() && used[b ^ c]) return false;
      }
      return true;
    };
    while (!fits(base)) ++base;
    bases.insert(base);
    for (unsigned c : labels) {
      if ((base ^ c) >= used.size()) used.resize((base ^ c) + 1), units.resize((base ^ c) + 1);
      used[base ^ c] = true;
    }
    units[at] |= static_cast<uint32_t>(at ^ base) << 10;
    if (nodes[n].value >= 0) units[base] = 0x80000000u | nodes[n].value;
    for (auto& [c, kid] : nodes[n].kids) {
      units[base ^ c] = c | (nodes[kid].value >= 0 ? 1u << 8 : 0);
      place(kid, base ^ c);
    }
  };
  place(0, 0);
  std::string blob;
  auto put = [&](uint32_t v) {
    for (int k = 0; k < 4; ++k) blob += static_cast<char>((v >> (8 * k)) & 0xFF);
  };
  put(static_cast<uint32_t>(units.size() * 4));
  for (uint32_t u : units) put(u);
  return blob + pool;
}

}  // namespace

TEST_CASE("Punctuation pre-tokenizer: each split behavior", "[formats][tokenizer]") {
  const Strings words = {"a", "b", "c", ",", "!", "a,", "b!", "!c", ",b", "!!", "\xC2\xAB", "\xC2\xBB", "x", "$", "x\xE2\x82\xAC"};
  auto punct = [&](const char* behavior, const std::string& text) {
    json pre = {{"type", "Punctuation"}};
    if (behavior) pre["behavior"] = behavior;
    return PreTokenize("punct", pre, words, text);
  };
  // "a,b!!c": every punctuation character is a match of its own, so the segments are
  // a | , | b | ! | ! | c (matches: the comma and both '!').
  CHECK(punct("Isolated", "a,b!!c") == Strings{"a", ",", "b", "!", "!", "c"});
  CHECK(punct("Removed", "a,b!!c") == Strings{"a", "b", "c"});
  // A match joins the segment before it unless that one was a match too.
  CHECK(punct("MergedWithPrevious", "a,b!!c") == Strings{"a,", "b!", "!", "c"});
  // Mirror image, scanning from the right: a match joins the segment after it.
  CHECK(punct("MergedWithNext", "a,b!!c") == Strings{"a", ",b", "!", "!c"});
  // Adjacent matches form one piece.
  CHECK(punct("Contiguous", "a,b!!c") == Strings{"a", ",", "b", "!!", "c"});
  // Default Isolated. U+00AB/U+00BB are Pi/Pf; '$' is ASCII punctuation to Rust although its
  // category is Sc; U+20AC (Sc, not ASCII) is no punctuation.
  CHECK(punct(nullptr, "\xC2\xAB" "x" "\xC2\xBB" "$x\xE2\x82\xAC") ==
        Strings{"\xC2\xAB", "x", "\xC2\xBB", "$", "x\xE2\x82\xAC"});
  CHECK_THROWS_WITH(punct("Sideways", "a"), Catch::Contains("unknown split behavior \"Sideways\""));
}

TEST_CASE("Digits pre-tokenizer: individual_digits true and false", "[formats][tokenizer]") {
  // U+0663 ARABIC-INDIC DIGIT THREE is Nd, U+00BD ONE HALF is No: both numeric to Rust.
  const std::string text = "ab123c\xD9\xA3\xC2\xBD";
  const Strings words = {"ab", "1", "2", "3", "123", "c", "\xD9\xA3", "\xC2\xBD", "\xD9\xA3\xC2\xBD"};
  CHECK(PreTokenize("digits1", {{"type", "Digits"}, {"individual_digits", true}}, words, text) ==
        Strings{"ab", "1", "2", "3", "c", "\xD9\xA3", "\xC2\xBD"});
  CHECK(PreTokenize("digits0", {{"type", "Digits"}, {"individual_digits", false}}, words, text) ==
        Strings{"ab", "123", "c", "\xD9\xA3\xC2\xBD"});
}

TEST_CASE("Whitespace, WhitespaceSplit, CharDelimiterSplit and FixedLength pre-tokenizers", "[formats][tokenizer]") {
  const Strings words = {"Hi", ",", "there", "!!", "ok_go", "Hi,", "there!!", "a", "b", "c",
                         "ab", "cd", "e", "\xC3\xA9" "a", "\xC3\xA9"};
  // Whitespace keeps the matches of \w+|[^\w\s]+ ('_' is a word character).
  CHECK(PreTokenize("ws", {{"type", "Whitespace"}}, words, "Hi, there!!  ok_go") ==
        Strings{"Hi", ",", "there", "!!", "ok_go"});
  CHECK(PreTokenize("wss", {{"type", "WhitespaceSplit"}}, words, "Hi, there!!  ok_go") ==
        Strings{"Hi,", "there!!", "ok_go"});
  // The delimiter is removed; the empty piece between "--" is dropped.
  json dash = {{"type", "CharDelimiterSplit"}, {"delimiter", "-"}};
  CHECK(PreTokenize("cds", dash, words, "a-b--c") == Strings{"a", "b", "c"});
  CHECK_THROWS_WITH(PreTokenize("cds2", {{"type", "CharDelimiterSplit"}, {"delimiter", "ab"}}, words, "a"),
                    Catch::Contains("CharDelimiterSplit delimiter must be one character"));
  // Runs of `length` code points, not bytes: U+00E9 is two bytes, one character.
  CHECK(PreTokenize("fl", {{"type", "FixedLength"}, {"length", 2}}, words, "abcde") == Strings{"ab", "cd", "e"});
  CHECK(PreTokenize("fl2", {{"type", "FixedLength"}, {"length", 2}}, words, "\xC3\xA9" "a" "\xC3\xA9") ==
        Strings{"\xC3\xA9" "a", "\xC3\xA9"});
}

TEST_CASE("UnicodeScripts pre-tokenizer", "[formats][tokenizer]") {
  const std::string doko = "\xE3\x81\xA9\xE3\x81\x93", kyoto = "\xE4\xBA\xAC\xE9\x83\xBD";  // どこ 京都
  const std::string choon = "\xE3\x83\xBC";  // U+30FC, Common, counted as Han
  const Strings words = {doko + " " + kyoto + " ", "abc", "123", "ab", choon, choon + kyoto};
  json pre = {{"type", "UnicodeScripts"}};
  // Hiragana counts as Han, so "どこ 京都 " is one run; a space has no script and stays with
  // the text before it; Latin "abc" then Common "123" each start a new piece.
  CHECK(PreTokenize("us", pre, words, doko + " " + kyoto + " abc123") == Strings{doko + " " + kyoto + " ", "abc", "123"});
  // Spaces before the first scripted character belong to no piece and vanish.
  CHECK(PreTokenize("us2", pre, words, "  ab") == Strings{"ab"});
  CHECK(PreTokenize("us3", pre, words, choon + kyoto + "ab") == Strings{choon + kyoto, "ab"});
}

TEST_CASE("BertPreTokenizer: whitespace removed, punctuation isolated", "[formats][tokenizer]") {
  const Strings words = {"Hello", ",", "world", "!", "(", "ok", ")"};
  CHECK(PreTokenize("bert", {{"type", "BertPreTokenizer"}}, words, "Hello, world!  (ok)") ==
        Strings{"Hello", ",", "world", "!", "(", "ok", ")"});
}

TEST_CASE("Metaspace replacement and the legacy add_prefix_space", "[formats][tokenizer]") {
  const Strings words = {"_a", "_b", "a"};
  // No prepend_scheme: "always"; add_prefix_space true agrees. ' ' -> '_', a '_' in front, then
  // split before each '_'.
  json legacy = {{"type", "Metaspace"}, {"replacement", "_"}, {"add_prefix_space", true}};
  CHECK(PreTokenize("ms_legacy", legacy, words, "a b") == Strings{"_a", "_b"});
  json never = {{"type", "Metaspace"}, {"replacement", "_"}, {"add_prefix_space", false}, {"prepend_scheme", "never"}};
  CHECK(PreTokenize("ms_never", never, words, "a b") == Strings{"a", "_b"});
  // add_prefix_space false with the default scheme "always" is refused, as the crate does.
  json clash = {{"type", "Metaspace"}, {"replacement", "_"}, {"add_prefix_space", false}};
  CHECK_THROWS_WITH(PreTokenize("ms_clash", clash, words, "a"), Catch::Contains("does not match prepend_scheme \"always\""));
  json wide = {{"type", "Metaspace"}, {"replacement", "__"}};
  CHECK_THROWS_WITH(PreTokenize("ms_wide", wide, words, "a"), Catch::Contains("Metaspace replacement must be one character"));
}

TEST_CASE("NFC, NFD, NFKC and NFKD normalizers", "[formats][tokenizer]") {
  // e + U+0301 composes to U+00E9; U+FB01 (the fi ligature) decomposes only under
  // compatibility; U+212B ANGSTROM SIGN is canonically U+00C5 = A + U+030A.
  const std::string text = "e\xCC\x81\xEF\xAC\x81\xE2\x84\xAB";
  CheckNormalizes({{"type", "NFC"}}, text, "\xC3\xA9\xEF\xAC\x81\xC3\x85");
  CheckNormalizes({{"type", "NFD"}}, text, "e\xCC\x81\xEF\xAC\x81" "A\xCC\x8A");
  CheckNormalizes({{"type", "NFKC"}}, text, "\xC3\xA9" "fi\xC3\x85");
  CheckNormalizes({{"type", "NFKD"}}, text, "e\xCC\x81" "fiA\xCC\x8A");
}

TEST_CASE("Lowercase, Strip, StripAccents, Replace, Prepend, Nmt and Sequence normalizers", "[formats][tokenizer]") {
  // Full lowercase mapping: U+0130 becomes i + U+0307.
  CheckNormalizes({{"type", "Lowercase"}}, "\xC3\x80" "B\xC4\xB0", "\xC3\xA0" "bi\xCC\x87");
  CheckNormalizes({{"type", "Strip"}, {"strip_left", true}, {"strip_right", false}}, " \t a  ", "a  ");
  CheckNormalizes({{"type", "Strip"}, {"strip_left", false}, {"strip_right", true}}, " \t a  ", " \t a");
  // NFD splits U+00E9 into e + U+0301 (Mn); StripAccents drops every mark, U+0903 (Mc) too.
  json nfd_strip = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFD"}}, {{"type", "StripAccents"}}}}};
  CheckNormalizes(nfd_strip, "\xC3\xA9\xE0\xA4\x95\xE0\xA4\x83", "e\xE0\xA4\x95");
  // Literal matches are found left to right without overlap: four spaces are two matches.
  CheckNormalizes({{"type", "Replace"}, {"pattern", {{"String", "  "}}}, {"content", " "}}, "a    b", "a  b");
  CheckNormalizes({{"type", "Replace"}, {"pattern", {{"Regex", " +"}}}, {"content", "_"}}, "a  b c", "a_b_c");
  CheckNormalizes({{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}}, "ab", "\xE2\x96\x81" "ab");
  // Nmt drops U+0001 and turns U+200B into a space.
  CheckNormalizes({{"type", "Nmt"}}, "a\x01" "b\xE2\x80\x8B" "c", "ab c");
}

TEST_CASE("BertNormalizer, BertPreTokenizer, WordPiece model and WordPiece decoder", "[formats][tokenizer]") {
  json vocab = {{"[UNK]", 0}, {"hello", 1}, {"world", 2}, {"\xE4\xB8\xAD", 3}, {"\xE5\x9B\xBD", 4},
                {",", 5}, {"un", 6}, {"##aff", 7}, {"##able", 8}, {"!", 9}, {"aff", 10}, {"##a", 11}};
  json j = {{"added_tokens", json::array()},
            {"normalizer", {{"type", "BertNormalizer"}}},
            {"pre_tokenizer", {{"type", "BertPreTokenizer"}}},
            {"post_processor", nullptr},
            {"decoder", {{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}}},
            {"model", {{"type", "WordPiece"}, {"vocab", vocab}, {"unk_token", "[UNK]"}}}};
  auto tok = test::LoadTokenizerJson("wordpiece", j);
  // BertNormalizer defaults: the tab becomes ' ', NUL is dropped, 中 and 国 get spaces around
  // them, accents go (strip_accents follows lowercase) and everything is lowercased:
  // "hello world 中  国 , unaffable!". BertPreTokenizer: hello world 中 国 , unaffable !
  // WordPiece on "unaffable": the longest vocab prefix is "un", then "##aff", then "##able".
  const std::string text = "H\xC3\xA9llo\tWORLD" + std::string(1, '\0') + "\xE4\xB8\xAD\xE5\x9B\xBD, unaffable!";
  const Ids ids = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  CHECK(tok->Encode(text, false) == ids);
  // The decoder strips "##" from continuation pieces, puts a space before the others, and
  // cleanup joins " ," and " !".
  CHECK(tok->Decode(ids, false) == "hello world \xE4\xB8\xAD \xE5\x9B\xBD, unaffable!");
  // "unx": "un" fits, then no piece starts "##x": the whole word is [UNK].
  CHECK(tok->Encode("unx aff", false) == Ids{0, 10});
  // clean_text drops Cc, Cf (U+200B) and Co, keeps unassigned U+0378; without lowercase
  // there is no accent stripping either.
  CheckNormalizes({{"type", "BertNormalizer"}, {"lowercase", false}}, "A\xE2\x80\x8B\xC3\xA9\xCD\xB8",
                  "A\xC3\xA9\xCD\xB8");
  // A file without the model's "type" (older files): with these three fields it is WordPiece.
  json legacy = j;
  legacy["model"].erase("type");
  legacy["model"]["continuing_subword_prefix"] = "##";
  legacy["model"]["max_input_chars_per_word"] = 100;
  CHECK(test::LoadTokenizerJson("wordpiece_legacy", legacy)->Encode(text, false) == ids);
  j["model"]["max_input_chars_per_word"] = 8;  // "unaffable" has 9 characters
  CHECK(test::LoadTokenizerJson("wordpiece8", j)->Encode("unaffable aff", false) == Ids{0, 10});
  j["model"]["unk_token"] = "<missing>";
  CHECK_THROWS_WITH(test::LoadTokenizerJson("wordpiece_nounk", j)->Encode("zzz", false),
                    Catch::Contains("WordPiece unk_token \"<missing>\" is not in the vocab"));
}

TEST_CASE("Unigram model: Viterbi, ties, fused unknowns, byte fallback", "[formats][tokenizer]") {
  // Scores: the best segmentation maximises their sum. min score -20, so an unknown
  // character scores -30.
  json vocab = json::array();
  for (auto [piece, score] : std::vector<std::pair<const char*, double>>{
           {"<unk>", 0}, {"a", -2}, {"b", -2}, {"ab", -3}, {"c", -2.5}, {"abc", -6},
           {"x", -1}, {"y", -1}, {"xy", -2}, {"<0x7A>", -20}}) {
    vocab.push_back(json::array({piece, score}));
  }
  json j = {{"added_tokens", json::array()}, {"normalizer", nullptr}, {"pre_tokenizer", nullptr},
            {"post_processor", nullptr},
            {"decoder", {{"type", "Sequence"}, {"decoders", {{{"type", "ByteFallback"}}, {{"type", "Fuse"}}}}}},
            {"model", {{"type", "Unigram"}, {"unk_id", 0}, {"vocab", vocab}, {"byte_fallback", false}}}};
  auto tok = test::LoadTokenizerJson("unigram", j);
  CHECK(tok->Encode("ab", false) == Ids{3});      // "ab" -3 beats a + b = -4
  CHECK(tok->Encode("abc", false) == Ids{3, 4});  // ab + c = -5.5 beats abc -6 and a + b + c -6.5
  CHECK(tok->Encode("xy", false) == Ids{8});      // xy -2 ties x + y; the first candidate stays
  CHECK(tok->Encode("zz", false) == Ids{0});      // two unknown characters fuse into one <unk>
  CHECK(tok->Encode("azzb", false) == Ids{1, 0, 2});
  j["model"]["byte_fallback"] = true;
  auto bytes = test::LoadTokenizerJson("unigram_bytes", j);
  CHECK(bytes->Encode("zz", false) == Ids{9, 9});  // the fused "zz" as its bytes <0x7A> <0x7A>
  CHECK(bytes->Encode("z\xC3\xA9", false) == Ids{0});  // <0xC3> is not in the vocab: <unk>
  CHECK(bytes->Decode(Ids{9, 9, 1}, false) == "zza");
  j["model"].erase("unk_id");
  CHECK_THROWS_WITH(test::LoadTokenizerJson("unigram_nounk", j)->Encode("q", false),
                    Catch::Contains("Unigram model has no unk_id"));
  j["model"]["unk_id"] = 10;
  CHECK_THROWS_WITH(test::LoadTokenizerJson("unigram_badunk", j),
                    Catch::Contains("Unigram unk_id 10 is not below the vocab size 10"));
}

TEST_CASE("Precompiled normalizer: SentencePiece charsmap, whole grapheme clusters, shortest rule", "[formats][tokenizer]") {
  const std::string e_acute = "e\xCC\x81", acute = "\xCC\x81";
  const std::string blob = Charsmap({{"\xEF\xBC\xA1", "A"}, {"\xEF\xAC\x81", "fi"}, {e_acute, "\xC3\xA9"}, {"x", ""}});
  PrecompiledCharsmap map(blob);
  CHECK(map.Transform("\xEF\xAC\x81") == std::optional<std::string_view>("fi"));
  CHECK(map.Transform("q") == std::nullopt);
  // Clusters: U+FF21 | e U+0301 | U+FB01 | x, each under 6 bytes and each with a rule.
  CHECK(map.Normalize("\xEF\xBC\xA1" + e_acute + "\xEF\xAC\x81x") == "A\xC3\xA9" "fi");
  // e + two accents is one 5-byte cluster: the rule for its prefix e + U+0301 replaces all of it.
  CHECK(map.Normalize(e_acute + acute) == "\xC3\xA9");
  // With three accents the cluster is 7 bytes: each code point alone, and none has a rule.
  CHECK(map.Normalize(e_acute + acute + acute) == e_acute + acute + acute);
  // The shortest matching rule wins: "e" -> "E" shadows e + U+0301 -> U+00E9.
  PrecompiledCharsmap shortest(Charsmap({{"e", "E"}, {e_acute, "\xC3\xA9"}}));
  CHECK(shortest.Normalize(e_acute) == "E");
  // Through a tokenizer.json: base64 in "precompiled_charsmap".
  CheckNormalizes({{"type", "Precompiled"}, {"precompiled_charsmap", Base64(blob)}},
                  "\xEF\xBC\xA1" + e_acute + "x", "A\xC3\xA9");
  json bad_char = WordLevel({}, {{"type", "Precompiled"}, {"precompiled_charsmap", "AA*A"}}, nullptr);
  CHECK_THROWS_WITH(test::LoadTokenizerJson("pc_bad", bad_char),
                    Catch::Contains("Precompiled normalizer: precompiled_charsmap: bad base64 character at offset 2"));
  std::string huge = blob;
  huge[3] = 0x7F;  // trie size far past the blob
  json bad_size = WordLevel({}, {{"type", "Precompiled"}, {"precompiled_charsmap", Base64(huge)}}, nullptr);
  CHECK_THROWS_WITH(test::LoadTokenizerJson("pc_size", bad_size), Catch::Contains("does not fit"));
}

TEST_CASE("grapheme clusters follow UAX #29", "[formats][tokenizer]") {
  auto starts = [](const std::string& s) { return unicode::GraphemeStarts(unicode::ToCodepoints(s)); };
  using Starts = std::vector<size_t>;
  CHECK(starts("\r\na") == Starts{0, 2});                                       // CR LF stays whole
  CHECK(starts("a\xCC\x81" "b") == Starts{0, 2});                               // a + U+0301 | b
  CHECK(starts("\xF0\x9F\x87\xAB\xF0\x9F\x87\xB7\xF0\x9F\x87\xA9") == Starts{0, 2});  // flag pair | lone RI
  CHECK(starts("\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x92\xBB") == Starts{0});   // woman ZWJ laptop
  CHECK(starts("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8") == Starts{0});           // Hangul L V T
}

TEST_CASE("CTC and BPEDecoder decoders, unsupported pieces", "[formats][tokenizer]") {
  json ctc = WordLevel({"<pad>", "h", "i", "|"}, nullptr, {{"type", "WhitespaceSplit"}}, {{"type", "CTC"}});
  auto tok = test::LoadTokenizerJson("ctc", ctc);
  // Repeats collapse (h h -> h), <pad> vanishes, '|' becomes a space: "h" "i" " " "i".
  CHECK(tok->Decode(Ids{1, 2, 2, 1, 3, 4, 3}, false) == "hi i");
  // BPEDecoder: the suffix ends a word, so it becomes a space, except in the last token.
  json bpe = WordLevel({"hel", "lo</w>", "wor", "ld</w>"}, nullptr, nullptr, {{"type", "BPEDecoder"}, {"suffix", "</w>"}});
  CHECK(test::LoadTokenizerJson("bpedec", bpe)->Decode(Ids{1, 2, 3, 4}, false) == "hello world");
  for (const char* stage : {"normalizer", "pre_tokenizer", "decoder"}) {
    json j = WordLevel({}, nullptr, nullptr);
    j[stage] = {{"type", "Frobnicate"}};
    CHECK_THROWS_WITH(test::LoadTokenizerJson("unsupported", j),
                      Catch::Contains("unsupported " + std::string(stage) + " type \"Frobnicate\"") &&
                          Catch::Contains("tokenizer.json"));
  }
  json j = WordLevel({}, nullptr, nullptr);
  j["model"]["type"] = "Bigram";
  CHECK_THROWS_WITH(test::LoadTokenizerJson("unsupported_model", j),
                    Catch::Contains("unsupported model type \"Bigram\"") && Catch::Contains("tokenizer.json"));
}

// Found by hf_tokenizer_fuzz: a Strip decoder's "start" of 3.3e127 was cast to int (undefined
// behaviour). Integer fields of tokenizer pieces go through JsonInt, with their own lower bound.
TEST_CASE("integer fields of tokenizer pieces are checked and never cast", "[formats][tokenizer]") {
  const std::pair<json, std::string> cases[] = {
      {{{"type", "Strip"}, {"content", " "}, {"start", 3.3e127}, {"stop", 0}},
       "Strip decoder start must be an integer"},
      {{{"type", "Strip"}, {"content", " "}, {"start", 0}, {"stop", 1.5}},
       "Strip decoder stop must be an integer"},
      {{{"type", "Strip"}, {"content", " "}, {"start", -1}, {"stop", 0}},
       "Strip decoder start must be at least 0, got -1"},
  };
  for (const auto& [decoder, message] : cases) {
    INFO(decoder.dump());
    CHECK_THROWS_WITH(test::LoadTokenizerJson("strip", WordLevel({"a"}, nullptr, nullptr, decoder)),
                      Catch::Contains(message));
  }
  json fixed = WordLevel({"a"}, nullptr, {{"type", "FixedLength"}, {"length", 0}});
  CHECK_THROWS_WITH(test::LoadTokenizerJson("fixed", fixed),
                    Catch::Contains("FixedLength length must be at least 1, got 0"));
  json strip = WordLevel({"a", "b"}, nullptr, {{"type", "WhitespaceSplit"}},
                         {{"type", "Strip"}, {"content", "a"}, {"start", 1}, {"stop", 0}});
  // Each token loses up to `start` leading "a": "a" "a" "b" -> "" "" "b".
  CHECK(test::LoadTokenizerJson("strip_ok", strip)->Decode(Ids{1, 1, 2}, false) == "b");
}
