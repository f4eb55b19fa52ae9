// Small helpers shared by the formats/ readers and writers: reading a JSON file with errors that
// name it, typed field access with context, and writing a file through temp + rename.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

namespace sq {

// Parses the JSON file at `path`; throws Error "PATH: malformed JSON: ..." or "cannot open".
nlohmann::json ReadJsonFile(const std::string& path);
// Parses `text`; `source` names it in the Error.
nlohmann::json ParseJson(const std::string& text, const std::string& source);

// Writes `path` by calling `fill` on a stream to a temporary file in the same folder, then
// renaming it into place, so an interrupted run never leaves a half-written file behind.
void WriteFileAtomic(const std::string& path, const std::function<void(std::ostream&)>& fill);
void WriteFileAtomic(const std::string& path, const std::string& contents);

// A float as a JSON number whose decimal text is the shortest that reads back as the same
// float (1e-5f is written as 1e-05, not 9.999999747378752e-06).
nlohmann::json JsonFloat(float v);

}  // namespace sq
