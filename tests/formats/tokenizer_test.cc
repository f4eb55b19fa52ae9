// Tokenizers against real references: the Hugging Face `tokenizers` crate's ids and decodes
// (../shared/tokenizers), the byte-level model's reference prompts, llama2.c's tokenizer and
// its tokenizer.json conversion, the regex engine against Python's `regex` module, and the
// bad-input errors.
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>
#include <functional>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "formats/llama2c_tokenizer.h"
#include "formats/tokenizer.h"
#include "formats/unicode.h"
#include "formats/unicode_regex.h"
#include "tests/test_paths.h"

using namespace sq;
using json = nlohmann::json;

namespace {

std::string Slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary);
  f << data;
}

// Stories of a corpus file: blocks separated by lines "<|endoftext|>".
std::vector<std::string> Stories(const std::string& path) {
  std::vector<std::string> out(1);
  std::istringstream in(Slurp(path));
  std::string line;
  while (std::getline(in, line)) {
    if (line == "<|endoftext|>") {
      out.emplace_back();
    } else {
      out.back() += line + "\n";
    }
  }
  std::erase_if(out, [](const std::string& s) { return s.empty(); });
  return out;
}

// llama2.c's encode, ported literally (linear scans, quadratic merging): the plain reference
// for the heap-based Llama2cTokenizer.
std::vector<int> NaiveLlama2cEncode(const Llama2cVocab& v, const std::string& text) {
  auto lookup = [&](const std::string& s) {
    for (size_t i = 3; i < v.pieces.size(); ++i) if (v.pieces[i] == s) return static_cast<int>(i);
    return -1;
  };
  std::vector<int> t;
  if (text.empty()) return t;
  std::string s = " " + text;
  for (size_t i = 0; i < s.size();) {
    size_t n = 1;
    while (i + n < s.size() && (static_cast<unsigned char>(s[i + n]) & 0xC0) == 0x80) ++n;
    int id = lookup(s.substr(i, n));
    if (id >= 0) t.push_back(id);
    else for (size_t k = 0; k < n; ++k) t.push_back(static_cast<unsigned char>(s[i + k]) + 3);
    i += n;
  }
  while (true) {
    float best = -1e10f;
    int best_id = -1, best_i = -1;
    for (size_t i = 0; i + 1 < t.size(); ++i) {
      int id = lookup(v.pieces[t[i]] + v.pieces[t[i + 1]]);
      if (id >= 0 && v.scores[id] > best) best = v.scores[id], best_id = id, best_i = static_cast<int>(i);
    }
    if (best_i < 0) break;
    t[best_i] = best_id;
    t.erase(t.begin() + best_i + 1);
  }
  return t;
}

std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace

TEST_CASE("HF tokenizer.json files reproduce the tokenizers crate's ids and decodes", "[formats][tokenizer]") {
  for (std::string model : {"gpt2", "llama2", "mistral-7b-v0.1", "phi-2"}) {
    std::string dir = test::RequireShared("tokenizers/" + model);
    json ref = json::parse(Slurp(dir + "/reference.json"));
    auto tok = LoadHfTokenizer(dir + "/tokenizer.json");
    const auto& texts = ref.at("texts");
    REQUIRE(texts.size() >= 18);
    for (size_t i = 0; i < texts.size(); ++i) {
      INFO(model << " text " << i << ": " << texts[i].get<std::string>().substr(0, 60));
      auto with = ref["ids_with_special"][i].get<std::vector<int>>();
      auto without = ref["ids_without_special"][i].get<std::vector<int>>();
      std::vector<int> got_with = tok->Encode(texts[i].get<std::string>(), true);
      CHECK(got_with == with);
      CHECK(tok->Encode(texts[i].get<std::string>(), false) == without);
      CHECK(tok->Decode(with, false) == ref["decoded"][i].get<std::string>());
      CHECK(tok->Decode(with, true) == ref["decoded_skip_special"][i].get<std::string>());
    }
  }
}

TEST_CASE("HF tokenizers expose vocab size, BOS and EOS", "[formats][tokenizer]") {
  auto llama = LoadHfTokenizer(test::RequireShared("tokenizers/llama2/tokenizer.json"));
  CHECK(llama->vocab_size() == 32000);
  CHECK(llama->bos_id() == 1);
  CHECK(llama->eos_id() == 2);
  CHECK(llama->TokenText(13) == "<0x0A>");
  auto gpt2 = LoadHfTokenizer(test::RequireShared("tokenizers/gpt2/tokenizer.json"));
  CHECK(gpt2->vocab_size() == 50257);
  CHECK(gpt2->bos_id() == 50256);
  CHECK(gpt2->eos_id() == 50256);
  auto phi = LoadHfTokenizer(test::RequireShared("tokenizers/phi-2/tokenizer.json"));
  CHECK(phi->vocab_size() == 50295);
}

TEST_CASE("bytelm-austen's byte tokenizer gives the reference prompt ids", "[formats][tokenizer]") {
  std::string dir = test::RequireShared("models/bytelm-austen");
  json ref = json::parse(Slurp(dir + "/reference.json"));
  auto tok = LoadTokenizer(dir + "/tokenizer.json", 0);
  CHECK(tok->bos_id() == 256);
  CHECK(tok->eos_id() == 257);
  REQUIRE(ref.at("prompts").size() == 3);
  for (const json& p : ref["prompts"]) {
    auto ids = tok->Encode(p.at("text").get<std::string>(), true);
    CHECK(ids == p.at("input_ids").get<std::vector<int>>());
    CHECK(tok->Decode(ids, true) == p.at("text").get<std::string>());
  }
}

TEST_CASE("llama2.c tokenizer encodes like llama2.c and round-trips", "[formats][tokenizer]") {
  std::string path = test::RequireShared("models/stories260K/tok512.bin");
  auto tok = LoadLlama2cTokenizer(path, 512);
  CHECK(tok->vocab_size() == 512);
  CHECK(tok->bos_id() == 1);
  CHECK(tok->eos_id() == 2);
  std::vector<int> ids = tok->Encode("Once upon a time", true);
  REQUIRE(ids.size() >= 2);
  CHECK(ids[0] == 1);
  CHECK(ids.size() < 10);  // merged, not one id per character (16 chars)
  CHECK(tok->Decode(ids, true) == "Once upon a time");
  CHECK(tok->Decode(ids, false) == "<s>Once upon a time");
  CHECK(tok->Encode("", true) == std::vector<int>{1});
  CHECK(tok->Encode("", false).empty());
  // A code point absent from the vocab falls back to its UTF-8 bytes at id byte + 3.
  std::vector<int> robot = tok->Encode("\xF0\x9F\xA4\x96", false);
  CHECK(std::vector<int>(robot.end() - 4, robot.end()) == std::vector<int>{0xF0 + 3, 0x9F + 3, 0xA4 + 3, 0x96 + 3});
  CHECK(tok->Decode(tok->Encode("caf\xC3\xA9 \xF0\x9F\xA4\x96!", true), true) == "caf\xC3\xA9 \xF0\x9F\xA4\x96!");
  CHECK(tok->TokenText(3 + 10) == "<0x0A>");

  Llama2cVocab vocab = ReadLlama2cVocab(path, 512);
  auto stories = Stories(test::RequireShared("corpora/tinystories-valid.txt"));
  REQUIRE(stories.size() >= 100);
  for (size_t i = 0; i < 20; ++i) {
    INFO("story " << i);
    CHECK(tok->Encode(stories[i], false) == NaiveLlama2cEncode(vocab, stories[i]));
  }
}

TEST_CASE("tokenizer.json written from tok512.bin encodes the corpus exactly like llama2.c", "[formats][tokenizer]") {
  std::string bin = test::RequireShared("models/stories260K/tok512.bin");
  std::string dir = test::TempDir("tok512_json");
  std::string out = dir + "/tokenizer.json";
  WriteHfTokenizerFromLlama2c(bin, 512, out);
  auto hf = LoadHfTokenizer(out);
  auto l2c = LoadLlama2cTokenizer(bin, 512);
  CHECK(hf->vocab_size() == 512);
  CHECK(hf->bos_id() == 1);
  auto stories = Stories(test::RequireShared("corpora/tinystories-valid.txt"));
  REQUIRE(stories.size() == 180);
  size_t tokens = 0, mismatches = 0;
  for (const std::string& s : stories) {
    std::vector<int> a = l2c->Encode(s, true), b = hf->Encode(s, true);
    tokens += a.size();
    if (a != b) ++mismatches;
    if (mismatches == 1 && a != b) CHECK(a == b);  // show the first difference only
  }
  CHECK(mismatches == 0);
  CHECK(tokens > 10000);
  for (size_t i = 0; i < 5; ++i) {
    CHECK(hf->Decode(hf->Encode(stories[i], true), true) == l2c->Decode(l2c->Encode(stories[i], true), true));
  }
}

TEST_CASE("regex engine splits like Oniguruma for the GPT-2, Llama-3 and Qwen2 patterns", "[formats][tokenizer]") {
  // Generated with Python's `regex` module (Oniguruma-compatible \p classes):
  // regex.findall(pattern, kRegexText).
  const char kRegexText[] = "I'M can't  HE'LL 12345 ok\x3f""!\x0d""\x0a""\x0a""  x\xc2""\xa0""y  \x09""\x0a""na\xc3""\xaf""ve \xe6""\x97""\xa5""\xe6""\x9c""\xac""\xe8""\xaa""\x9e"" \xe2""\x91""\xa0""\xe2""\x91""\xa1"" \xef""\xbc""\xa1""\xef""\xbc""\xa2"" 3.14";
  const std::vector<std::string> kGpt2Splits = {"I", "'", "M", " can", "'t", " ", " HE", "'", "LL", " 12345", " ok", "\x3f""!", "\x0d""\x0a""\x0a"" ", " x", "\xc2""\xa0""", "y", "  \x09""", "\x0a""", "na\xc3""\xaf""ve", " \xe6""\x97""\xa5""\xe6""\x9c""\xac""\xe8""\xaa""\x9e""", " \xe2""\x91""\xa0""\xe2""\x91""\xa1""", " \xef""\xbc""\xa1""\xef""\xbc""\xa2""", " 3", ".", "14"};
  const std::vector<std::string> kLlama3Splits = {"I", "'M", " can", "'t", " ", " HE", "'LL", " ", "123", "45", " ok", "\x3f""!\x0d""\x0a""\x0a""", " ", " x", "\xc2""\xa0""y", "  \x09""\x0a""", "na\xc3""\xaf""ve", " \xe6""\x97""\xa5""\xe6""\x9c""\xac""\xe8""\xaa""\x9e""", " ", "\xe2""\x91""\xa0""\xe2""\x91""\xa1""", " \xef""\xbc""\xa1""\xef""\xbc""\xa2""", " ", "3", ".", "14"};
  const std::vector<std::string> kQwen2Splits = {"I", "'M", " can", "'t", " ", " HE", "'LL", " ", "1", "2", "3", "4", "5", " ok", "\x3f""!\x0d""\x0a""\x0a""", " ", " x", "\xc2""\xa0""y", "  \x09""\x0a""", "na\xc3""\xaf""ve", " \xe6""\x97""\xa5""\xe6""\x9c""\xac""\xe8""\xaa""\x9e""", " ", "\xe2""\x91""\xa0""", "\xe2""\x91""\xa1""", " \xef""\xbc""\xa1""\xef""\xbc""\xa2""", " ", "3", ".", "1", "4"};
  const char* kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
  const char* kLlama3 =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  const char* kQwen2 =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  auto split = [&](const char* pattern) {
    UnicodeRegex re(pattern);
    std::vector<uint32_t> cps = unicode::ToCodepoints(kRegexText);
    std::vector<std::string> out;
    for (auto [a, b] : re.FindAll(cps)) {
      out.push_back(unicode::FromCodepoints({cps.begin() + a, cps.begin() + b}));
    }
    return out;
  };
  CHECK(split(kGpt2) == kGpt2Splits);
  CHECK(split(kLlama3) == kLlama3Splits);
  CHECK(split(kQwen2) == kQwen2Splits);
  CHECK_THROWS_AS(UnicodeRegex("(?<=a)b"), Error);
  CHECK_THROWS_AS(UnicodeRegex("a++"), Error);
  CHECK_THROWS_AS(UnicodeRegex("\\p{Nonsense}"), Error);
  CHECK_THROWS_AS(UnicodeRegex("(a"), Error);
  CHECK(UnicodeRegex("a{2,3}?b|x").MatchAt(unicode::ToCodepoints("aaab"), 0) == 4);
  CHECK(UnicodeRegex("[^a-c\\d]+").MatchAt(unicode::ToCodepoints("xyz1"), 0) == 3);
}

TEST_CASE("Unicode normalization forms and lowercase match Python's unicodedata", "[formats][tokenizer]") {
  // Expected strings from unicodedata.normalize / str.lower.
  CHECK(unicode::Nfc("e\xCC\x81") == "\xC3\xA9");                        // e + U+0301 -> é
  CHECK(unicode::Nfd("\xC3\xA9") == "e\xCC\x81");
  CHECK(unicode::Nfkc("\xEF\xAC\x81") == "fi");                          // U+FB01 ligature
  CHECK(unicode::Nfkc("\xE2\x91\xA0\xEF\xBC\xA1") == "1A");              // ① Ａ
  CHECK(unicode::Nfc("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8") == "\xEA\xB0\x81");  // Hangul L V T -> 각
  CHECK(unicode::Nfd("\xEA\xB0\x81") == "\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8");
  CHECK(unicode::Nfc("a\xCC\xA3\xCC\x87") == "\xE1\xBA\xA1\xCC\x87");    // a + dot below + dot above -> ạ̇
  CHECK(unicode::Nfc("\xE2\x84\xAB") == "\xC3\x85");                     // Angstrom sign -> Å (singleton)
  CHECK(unicode::ToLower("\xC3\x84" "Bc \xC4\xB0") == "\xC3\xA4" "bc i\xCC\x87");
}

TEST_CASE("tokenizer loaders reject bad files with one-line errors naming the file", "[formats][tokenizer]") {
  std::string dir = test::TempDir("tok_bad");
  auto contains = [](const std::string& s, const std::string& part) {
    INFO(s);
    CHECK(s.find(part) != std::string::npos);
    CHECK(s.find('\n') == std::string::npos);
  };
  WriteFile(dir + "/broken.json", "{\"model\": {\"type\": \"BPE\", ");
  contains(ErrorOf([&] { LoadHfTokenizer(dir + "/broken.json"); }), dir + "/broken.json");
  WriteFile(dir + "/bigram.json", R"({"model": {"type": "Bigram", "vocab": [["a", 0.0]]}})");
  std::string e = ErrorOf([&] { LoadHfTokenizer(dir + "/bigram.json"); });
  contains(e, dir + "/bigram.json");
  contains(e, "unsupported model type \"Bigram\"");
  WriteFile(dir + "/merge.json",
            R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a c"]}})");
  e = ErrorOf([&] { LoadHfTokenizer(dir + "/merge.json"); });
  contains(e, dir + "/merge.json");
  contains(e, "unknown token \"c\"");

  std::string good = Slurp(test::RequireShared("models/stories260K/tok512.bin"));
  WriteFile(dir + "/trunc.bin", good.substr(0, good.size() / 2));
  e = ErrorOf([&] { LoadLlama2cTokenizer(dir + "/trunc.bin", 512); });
  contains(e, dir + "/trunc.bin");
  // A length field pointing past the end: token 0's length sits at bytes 8..11.
  std::string bad_len = good;
  int32_t huge = 1 << 30;
  std::memcpy(&bad_len[8], &huge, 4);
  WriteFile(dir + "/len.bin", bad_len);
  e = ErrorOf([&] { LoadLlama2cTokenizer(dir + "/len.bin", 512); });
  contains(e, "past the end");
  contains(e, dir + "/len.bin");
  e = ErrorOf([&] { LoadLlama2cTokenizer(test::SharedPath("models/stories260K/tok512.bin"), 500); });
  contains(e, "vocab_size");
  e = ErrorOf([&] { LoadLlama2cTokenizer(test::SharedPath("models/stories260K/tok512.bin"), 600); });
  contains(e, "tok512.bin");
  e = ErrorOf([&] { LoadTokenizer(test::SharedPath("models/stories260K/tok512.bin"), 0); });
  contains(e, "vocab size");

  auto tok = LoadHfTokenizer(test::RequireShared("tokenizers/gpt2/tokenizer.json"));
  e = ErrorOf([&] { tok->Encode("ok \xC3\x28 no", true); });
  contains(e, "not valid UTF-8 at byte 3");
  auto l2c = LoadLlama2cTokenizer(test::SharedPath("models/stories260K/tok512.bin"), 512);
  contains(ErrorOf([&] { l2c->Encode("\xFF", true); }), "not valid UTF-8 at byte 0");
}

TEST_CASE("sinkquant tokenize prints the ids as a JSON array", "[formats][tokenizer]") {
  std::string dir = test::TempDir("tok_cli");
  std::string text = "Hello world\nOnce upon a time, caf\xC3\xA9!";
  WriteFile(dir + "/in.txt", text);
  auto run = [&](const std::string& flags) {
    std::string cmd = test::Binary() + " tokenize " + flags + " < " + dir + "/in.txt 2>" + dir + "/err.txt";
    FILE* p = popen(cmd.c_str(), "r");
    REQUIRE(p);
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
    int status = pclose(p);
    return std::pair(status, out);
  };
  auto ids_text = [](const std::vector<int>& ids) {
    std::string s = "[";
    for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
    return s + "]\n";
  };
  std::string llama = test::RequireShared("tokenizers/llama2/tokenizer.json");
  auto tok = LoadHfTokenizer(llama);
  auto [st1, out1] = run("--tokenizer " + llama);
  CHECK(st1 == 0);
  CHECK(out1 == ids_text(tok->Encode(text, true)));
  auto [st2, out2] = run("--tokenizer " + llama + " --no-special");
  CHECK(st2 == 0);
  CHECK(out2 == ids_text(tok->Encode(text, false)));
  std::string bin = test::RequireShared("models/stories260K/tok512.bin");
  auto l2c = LoadLlama2cTokenizer(bin, 512);
  auto [st3, out3] = run("--tokenizer " + bin + " --vocab 512");
  CHECK(st3 == 0);
  CHECK(out3 == ids_text(l2c->Encode(text, true)));
  auto [st4, out4] = run("--tokenizer " + bin);
  CHECK(st4 != 0);
  CHECK(Slurp(dir + "/err.txt").find("--vocab") != std::string::npos);
  auto [st5, out5] = run("--tokenizer " + llama + " --vocab 512");
  CHECK(st5 != 0);
}
