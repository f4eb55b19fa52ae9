// A ProfileResult as JSON (schema: docs/profile-schema.md) and as a short text summary.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "calib/profiler.h"

namespace sq {

// What was profiled, for the JSON header (so two profiles can be compared by a script).
struct ProfileMeta {
  std::string model_path, tokenizer_path, data_path, data_sha256;
  std::string window_mode;  // "documents" or "consecutive"
  int ctx = 0;
  long max_tokens = 0;
  uint64_t seed = 0;
};

inline constexpr const char* kProfileSchema = "sinkquant.profile/1";

nlohmann::json ProfileToJson(const ProfileResult& r, const ProfileMeta& meta);

// The terminal summary: top outlier channels, massive activations, sink heads, residual sinks,
// outlier tokens, each with its threshold, and the verdict line. `top` rows per table.
std::string ProfileSummary(const ProfileResult& r, int top = 10);

// One line: what W4A4 will struggle with on this model, from the detections.
std::string ProfileVerdict(const ProfileResult& r);

// Short names used in JSON and text.
std::string LayerName(int layer);  // "emb" for -1, else the number
std::string QuoteToken(const std::string& text);  // printable, quoted: "'\n'" -> "'\\n'"

}  // namespace sq
