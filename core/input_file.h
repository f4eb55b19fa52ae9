// Opening untrusted input files and keeping outputs off them. Every reader goes through
// OpenInputFile, which refuses what is not a regular file (a FIFO would block open() or read(),
// a device never ends) and files over a size limit, and records the file's identity so that
// the output writer (core/atomic_file.h) can refuse to replace any input, however spelled.
#pragma once

#include <cstdint>
#include <string>

namespace sq {

// Text-like inputs (JSON documents, tokenizers, data files) are read whole; beyond this they
// are refused rather than slurped. Checkpoints are mapped, not read, and have no limit here.
inline constexpr uint64_t kMaxTextInputBytes = 2ull << 30;

// Opens `path` read-only without blocking, checks it is a regular file of at most `max_bytes`,
// and records it as an input. Returns the open descriptor (the caller closes it) and its size.
// Throws Error "PATH: ..." naming what `path` is when refused.
int OpenInputFile(const std::string& path, uint64_t max_bytes, uint64_t* size);

// The whole content of a regular file of at most `max_bytes`.
std::string ReadInputFile(const std::string& path, uint64_t max_bytes = kMaxTextInputBytes);

// While one of these is alive (main() holds one for the whole command), every input opened is
// recorded, and outputs that are the same file as one of them are refused. Scoped so that a
// process running many commands (the test suite) starts each with a clean record.
class TrackInputs {
 public:
  TrackInputs();
  ~TrackInputs();
  TrackInputs(const TrackInputs&) = delete;
  TrackInputs& operator=(const TrackInputs&) = delete;
};

// Throws Error when `path` exists and is the same file (device and inode, after following
// symlinks) as an input read so far, or exists and is not a regular file (a device, FIFO,
// folder or symlink is never replaced). Called by every output writer (core/atomic_file.h).
void CheckOutputPath(const std::string& path);

// True when both paths exist and name the same file (symlinks, hard links, ./ spellings).
bool SameFile(const std::string& a, const std::string& b);

}  // namespace sq
