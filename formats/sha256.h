// SHA-256 (FIPS 180-4), to identify the data a profile or calibration was computed on.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sq {

// Lowercase hex digest of `bytes`.
std::string Sha256Hex(std::string_view bytes);
// Lowercase hex digest of the file at `path`, read in chunks; throws Error naming the file.
std::string Sha256File(const std::string& path);

}  // namespace sq
