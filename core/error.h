// Error: the one exception sinkquant throws. It carries a one-line message that names the
// file, tensor or flag and what was expected. The library never prints or exits; cli/main
// catches it, prints the line and returns non-zero.
#pragma once

#include <concepts>
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
// A literal message: no std::string is built unless the check fails.
inline void Check(bool ok, const char* message) {
  if (!ok) [[unlikely]] throw Error(message);
}
// A message built only on failure, for checks on per-call and per-token paths, where the
// formatting (std::to_string, concatenation) would otherwise cost allocations on every pass:
//   Check(x.cols() == n, [&] { return "input has " + std::to_string(x.cols()) + " columns"; });
template <typename MakeMessage>
  requires std::invocable<MakeMessage&>
inline void Check(bool ok, MakeMessage&& make_message) {
  if (!ok) [[unlikely]] throw Error(make_message());
}

// Re-throws `e` with `context` in front: "loading model.safetensors: tensor x: ...".
[[noreturn]] inline void Rethrow(const std::string& context, const std::exception& e) {
  throw Error(context + ": " + e.what());
}

}  // namespace sq
