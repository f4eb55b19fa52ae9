// Where tests find the shared real models and corpora, and how they fail when they are absent:
// loudly, never by passing silently.
#pragma once

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

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

// The folders TempDir made in this process, removed when it exits (each test runs in its own
// process under ctest), so a suite run leaves nothing in /tmp; SINKQUANT_KEEP_TEST_FILES=1
// keeps them for a look after a failure.
struct TempDirs {
  std::vector<std::filesystem::path> made;
  ~TempDirs() {
    if (std::getenv("SINKQUANT_KEEP_TEST_FILES")) return;
    std::error_code ec;  // best effort: a folder a test removed itself is fine
    for (const auto& p : made) std::filesystem::remove_all(p, ec);
  }
};

// A fresh folder per test and process: two suites running at once (two build folders, or a
// sanitizer build beside the normal one) must not delete each other's files.
inline std::string TempDir(const std::string& name) {
  static TempDirs dirs;
  auto p = std::filesystem::temp_directory_path() /
           ("sinkquant_test_" + name + "." + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  dirs.made.push_back(p);
  return p.string();
}

}  // namespace sq::test
