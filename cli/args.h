// Command-line flags: `--name value` or `--name` (boolean). Each subcommand takes the flags it
// knows; Finish() refuses any flag nobody took, so a typo never runs silently.
#pragma once

#include <limits>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/gemm.h"

namespace sq {

// The widest range an int flag can take (for flags bounded elsewhere, e.g. by the model).
inline constexpr long kIntMax = std::numeric_limits<int>::max();

class Args {
 public:
  Args(std::string command, const std::vector<std::string>& argv);

  bool Has(const std::string& name);                 // marks the flag as used
  bool Flag(const std::string& name);                // boolean flag (no value)
  std::string Str(const std::string& name, const std::string& def);
  std::string Required(const std::string& name);     // throws when missing
  // A file the command will write (--json, --logits-out, a .onnx --out): its folder must exist
  // and be writable now, not after the minutes of work that precede the write. "" when absent.
  std::string OutputFile(const std::string& name, bool required = false);
  // Numeric flags, validated here and nowhere else: decimal integer syntax only ("4x", "1e3",
  // "0x10" and out-of-range values are refused), finite numbers, and the flag's own range, each
  // with an Error naming the flag. The default is returned as given when the flag is absent.
  int Int(const std::string& name, int def, long min, long max);
  int IntOneOf(const std::string& name, int def, const std::vector<int>& allowed);
  // A flag whose value is one of the names in `choices` (--onnx-format qdq|matmulnbits): the
  // value paired with it, or with `def` when the flag is absent; any other name is refused with
  // the list.
  template <class T>
  T OneOf(const std::string& name, const std::string& def,
          const std::vector<std::pair<std::string, T>>& choices) {
    const std::string v = Str(name, def);
    for (const auto& [choice, value] : choices) {
      if (v == choice) return value;
    }
    std::string list;
    for (const auto& choice : choices) list += (list.empty() ? "" : ", ") + choice.first;
    throw Error(command_ + ": flag --" + name + " must be one of " + list + ", got '" + v + "'");
  }
  // A comma-separated list of integers ("0,3"), each as Int checks it; empty when absent.
  std::vector<int> IntList(const std::string& name, long min, long max);
  double Float(const std::string& name, double def, double min, double max);
  void Finish() const;                               // throws on unused flags

 private:
  std::string command_;
  std::map<std::string, std::string> values_;   // "" for boolean flags
  std::set<std::string> used_;
};

// Flags several commands share, so each is bounded the same way everywhere.
inline constexpr long kMaxThreads = 1024;       // --threads: 0 means all cores
inline constexpr long kMaxCtx = 1L << 20;       // --ctx: 0 means the model's limit (<= 512)
int ThreadsFlag(Args& a);
int CtxFlag(Args& a);
int TokensFlag(Args& a, const std::string& name);  // --max-tokens, --calib-tokens: 0 = all
int SeedFlag(Args& a);
// --matmul-precision f32|bf16 (default f32): what products with bf16 weights compute (core/gemm.h).
MatmulPrecision MatmulPrecisionFlag(Args& a);

}  // namespace sq
