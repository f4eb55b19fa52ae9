// Writing outputs so that an interrupted run never leaves a half-written file behind:
// write to a temporary name in the target folder, then rename into place. Under mpirun only
// rank 0 writes (core/dist.h): the other ranks check the path and return.
#pragma once

#include <functional>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

namespace sq {

// Writes `content` to `path` atomically. Throws Error naming the path.
void WriteFileAtomic(const std::string& path, const std::string& content);

// Streams into a temporary file beside `path` via `write`, then renames it into place. If
// `write` throws, the temporary file is removed and the exception propagates.
void WriteFileAtomic(const std::string& path, const std::function<void(std::ostream&)>& write);

// Writes several files that belong together (a report and its sibling .md): every one is
// written to a temporary name first, and only when all succeeded are they renamed into place,
// so a failure leaves none of them.
void WriteFilesAtomic(const std::vector<std::pair<std::string, std::string>>& files);

}  // namespace sq
