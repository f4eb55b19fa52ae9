// Error: the one exception sinkquant throws. It carries a one-line message that names the
// file, tensor or flag and what was expected. The library never prints or exits; cli/main
// catches it, prints the line and returns non-zero.
#pragma once

#include <stdexcept>
#include <string>

namespace sq {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Throws Error(message) when `ok` is false. Use for input checks, not for invariants.
inline void Check(bool ok, const std::string& message) {
  if (!ok) throw Error(message);
}

// Re-throws `e` with `context` in front: "loading model.safetensors: tensor x: ...".
[[noreturn]] inline void Rethrow(const std::string& context, const std::exception& e) {
  throw Error(context + ": " + e.what());
}

}  // namespace sq
