// Subcommand registry: each cli/*.cc file registers one subcommand with
//   static const bool kRegistered = RegisterCommand({"eval", "perplexity of a model", RunEval});
// cli/main.cc dispatches by name. A command parses flags into an options struct, calls one
// library entry point and prints; it throws sq::Error for bad input.
#pragma once

#include <string>
#include <vector>

#include "cli/args.h"

namespace sq {

struct Command {
  std::string name;
  std::string summary;   // one line for `sinkquant --help`
  std::string usage;     // flags, for `sinkquant NAME --help`
  int (*run)(Args& args);
};

bool RegisterCommand(Command c);
const std::vector<Command>& Commands();

}  // namespace sq
