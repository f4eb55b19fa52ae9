// sinkquant: find what breaks 4-bit quantization in a checkpoint, remove it, and measure it.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/dist.h"
#include "core/error.h"
#include "core/input_file.h"
#include "core/memory.h"
#include "core/progress.h"

namespace sq {

namespace {
std::vector<Command>& Registry() {
  static std::vector<Command> commands;
  return commands;
}
}  // namespace

bool RegisterCommand(Command c) {
  Registry().push_back(std::move(c));
  return true;
}

const std::vector<Command>& Commands() { return Registry(); }

}  // namespace sq

namespace {

void PrintHelp() {
  std::printf("usage: sinkquant COMMAND [flags] [--quiet]   (sinkquant COMMAND --help for its "
              "flags)\n  --quiet: no progress and no peak-memory line on stderr\n\n");
  auto commands = sq::Commands();
  std::sort(commands.begin(), commands.end(),
            [](const sq::Command& a, const sq::Command& b) { return a.name < b.name; });
  for (const auto& c : commands) std::printf("  %-14s %s\n", c.name.c_str(), c.summary.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  const sq::dist::Session mpi(&argc, &argv);
  // Under mpirun rank 0 speaks for the job: the other ranks print nothing (their stdout goes
  // nowhere, no progress, no peak-memory line) and write no files (core/atomic_file.h).
  const bool silent_rank = sq::dist::Rank() != 0;
  if (silent_rank && !std::freopen("/dev/null", "w", stdout)) return 1;
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    PrintHelp();
    return argc < 2 ? 2 : 0;
  }
  const std::string name = argv[1];
  for (const auto& c : sq::Commands()) {
    if (c.name != name) continue;
    std::vector<std::string> rest(argv + 2, argv + argc);
    // --quiet is every command's flag: it silences stderr progress, never changes stdout.
    const auto quiet = std::remove(rest.begin(), rest.end(), std::string("--quiet"));
    const bool is_quiet = quiet != rest.end() || silent_rank;
    rest.erase(quiet, rest.end());
    sq::SetProgressEnabled(!is_quiet);
    sq::StartMemorySampler();
    if (std::find(rest.begin(), rest.end(), "--help") != rest.end()) {
      std::printf("usage: sinkquant %s %s\n\n%s\n", name.c_str(), c.usage.c_str(),
                  c.summary.c_str());
      return 0;
    }
    int rc;
    try {
      const sq::TrackInputs track_inputs;  // outputs may never replace an input
      sq::Args args(name, rest);
      rc = c.run(args);
    } catch (const std::exception& e) {
      const std::string message = "sinkquant " + name + ": error: " + e.what();
      // The other ranks may wait in a reduction for this one: end them all.
      if (sq::dist::Size() > 1) sq::dist::Abort(message);
      std::fprintf(stderr, "%s\n", message.c_str());
      return 1;
    }
    // Output lost on a full disk or a closed pipe is a failure, not a success.
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
      std::fprintf(stderr, "sinkquant %s: error: writing to stdout failed: %s\n", name.c_str(),
                   std::strerror(errno));
      return 1;
    }
    if (!is_quiet) {
      const sq::MemoryUse m = sq::PeakMemory();
      std::fprintf(stderr, "peak memory: %.0f MiB resident (anonymous %.0f, file-backed %.0f)\n",
                   m.peak_rss_mib, m.peak_anon_mib, m.peak_file_mib);
    }
    return rc;
  }
  if (!silent_rank) {
    std::fprintf(stderr, "sinkquant: unknown command '%s' (see sinkquant --help)\n",
                 name.c_str());
  }
  return 2;
}
