// Small JSON helpers shared by the formats/ readers and writers: reading a JSON file with errors
// that name it, and floats written in their shortest exact form. (Atomic writes: core/atomic_file.h.)
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace sq {

// Deepest nesting of arrays/objects any JSON document may have: real configs, tokenizers and
// headers stay under 10; the limit keeps hostile input from costing stack or time.
inline constexpr int kMaxJsonDepth = 64;

// Parses the JSON file at `path` (a regular file, see core/input_file.h); throws Error
// "PATH: malformed JSON: ...", "cannot open", nesting past kMaxJsonDepth or a duplicate key.
nlohmann::json ReadJsonFile(const std::string& path);
// Parses `text` (the one JSON entry point: depth limit, duplicate keys refused); `source`
// names it in the Error.
nlohmann::json ParseJson(const std::string& text, const std::string& source);

// `v` as an int: throws Error "WHAT must be an integer, got V" when it is not an integer
// number in int's range (nlohmann's get<int>() would cast 1e116 or 2.5 silently, which is
// undefined behaviour for 1e116).
int JsonInt(const nlohmann::json& v, const std::string& what);

// A float as a JSON number whose decimal text is the shortest that reads back as the same
// float (1e-5f is written as 1e-05, not 9.999999747378752e-06).
nlohmann::json JsonFloat(float v);

}  // namespace sq
