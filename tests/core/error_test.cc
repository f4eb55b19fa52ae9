#include <catch2/catch.hpp>

#include <string>

#include "core/error.h"

using namespace sq;

TEST_CASE("Check builds a lazy message only when the check fails", "[core]") {
  int built = 0;
  auto message = [&] {
    ++built;
    return "input has " + std::to_string(3) + " columns";
  };
  CHECK_NOTHROW(Check(true, message));
  CHECK(built == 0);
  CHECK_THROWS_WITH(Check(false, message), "input has 3 columns");
  CHECK(built == 1);
  CHECK_THROWS_AS(Check(false, "a literal"), Error);
  CHECK_THROWS_WITH(Check(false, std::string("a string")), "a string");
}
