// Running the real `sinkquant` binary from tests: exit code and combined output.
#pragma once

#include <array>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <sys/wait.h>

#include "tests/test_paths.h"

namespace sq::test {

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs a shell command line, stderr merged into the output.
inline RunResult RunCommand(const std::string& command) {
  const std::string cmd = command + " 2>&1";
  RunResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// Runs `sinkquant ARGS` through the shell (args are passed as written).
inline RunResult RunSinkquant(const std::string& args) { return RunCommand(Binary() + " " + args); }

// Writes `content` to a file in `dir` and returns its path.
inline std::string WriteTemp(const std::string& dir, const std::string& name,
                             const std::string& content) {
  const std::string path = dir + "/" + name;
  FILE* f = fopen(path.c_str(), "wb");
  if (f) {
    fwrite(content.data(), 1, content.size(), f);
    fclose(f);
  }
  return path;
}

// A file's bytes ("" when it cannot be read).
inline std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace sq::test
