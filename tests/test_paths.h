// Where tests find the shared real models and corpora, and how they fail when they are absent:
// loudly, never by passing silently.
#pragma once

#include <catch2/catch.hpp>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace sq::test {

inline std::string SharedPath(const std::string& rel) {
  return std::string(SINKQUANT_SHARED_DIR) + "/" + rel;
}

// Returns the path of a file under ../shared; FAILs the test with a clear message if absent.
inline std::string RequireShared(const std::string& rel) {
  std::string p = SharedPath(rel);
  if (!std::filesystem::exists(p)) {
    FAIL("missing real test data " << p << " (tests read ../shared beside the repository)");
  }
  return p;
}

inline std::string Binary() { return SINKQUANT_BINARY; }

// A fresh folder per test and process: two suites running at once (two build folders, or a
// sanitizer build beside the normal one) must not delete each other's files.
inline std::string TempDir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() /
           ("sinkquant_test_" + name + "." + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p.string();
}

}  // namespace sq::test
