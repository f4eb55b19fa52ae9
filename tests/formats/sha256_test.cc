#include <catch2/catch.hpp>
#include <fstream>
#include <string>

#include "core/error.h"
#include "formats/sha256.h"
#include "tests/test_paths.h"

using namespace sq;

TEST_CASE("SHA-256 matches the FIPS 180-4 test vectors", "[formats]") {
  CHECK(Sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(Sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(Sha256Hex(std::string(1000000, 'a')) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("Sha256File hashes in chunks like the whole string, and names a missing file",
          "[formats]") {
  const std::string dir = sq::test::TempDir("sha256");
  std::string content;
  for (int i = 0; i < 200000; ++i) content += static_cast<char>('a' + i % 26);
  std::ofstream(dir + "/f.txt", std::ios::binary) << content;
  CHECK(Sha256File(dir + "/f.txt") == Sha256Hex(content));
  CHECK(Sha256File(sq::test::RequireShared("models/stories260K/stories260K.bin")).rfind(
            "b0a507e7ad0f6266", 0) == 0);
  CHECK_THROWS_WITH(Sha256File(dir + "/missing"), Catch::Contains("missing"));
}
