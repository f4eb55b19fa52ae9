// Command-line flags: `--name value` or `--name` (boolean). Each subcommand takes the flags it
// knows; Finish() refuses any flag nobody took, so a typo never runs silently.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

namespace sq {

class Args {
 public:
  Args(std::string command, const std::vector<std::string>& argv);

  bool Has(const std::string& name);                 // marks the flag as used
  bool Flag(const std::string& name);                // boolean flag (no value)
  std::string Str(const std::string& name, const std::string& def);
  std::string Required(const std::string& name);     // throws when missing
  int Int(const std::string& name, int def);
  double Float(const std::string& name, double def);
  void Finish() const;                               // throws on unused flags

 private:
  std::string command_;
  std::map<std::string, std::string> values_;   // "" for boolean flags
  std::set<std::string> used_;
};

}  // namespace sq
