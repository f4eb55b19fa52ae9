// sinkquant profile: where are the outliers and sinks of a model, and why.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "calib/dataset.h"
#include "calib/html_report.h"
#include "calib/profile_report.h"
#include "calib/profiler.h"
#include "cli/command.h"
#include "cli/output.h"
#include "core/error.h"
#include "core/threads.h"
#include "formats/sha256.h"
#include "model/loader.h"

namespace sq {
namespace {

struct ProfileOptions {
  std::string model, tokenizer, data, out;
  int ctx = 0, threads = 0;
  long max_tokens = 0;
  uint64_t seed = 0;
  ProfileThresholds th;
};

ProfileOptions ParseProfileOptions(Args& a) {
  ProfileOptions o;
  o.model = a.Required("model");
  o.tokenizer = a.Str("tokenizer", "");
  o.data = a.Required("data");
  o.out = a.Required("out");
  o.ctx = CtxFlag(a);
  if (a.Has("max-tokens")) {
    o.max_tokens = TokensFlag(a, "max-tokens");
    Check(o.max_tokens > 0, "--max-tokens must be a positive number of tokens, got " +
                                std::to_string(o.max_tokens) + " (omit it to use the whole file)");
  }
  o.seed = static_cast<uint64_t>(SeedFlag(a));
  o.threads = ThreadsFlag(a);
  ProfileThresholds& t = o.th;
  t.outlier_ratio = a.Float("outlier-ratio", t.outlier_ratio, 1.0, 1e9);
  t.massive_abs = a.Float("massive-abs", t.massive_abs, 0.0, 1e30);
  t.massive_rel = a.Float("massive-rel", t.massive_rel, 1.0, 1e30);
  t.sink_mass = a.Float("sink-mass", t.sink_mass, 0.0, 1.0);
  t.drain_ratio = a.Float("drain-ratio", t.drain_ratio, 0.0, 1e9);
  t.residual_sink_factor = a.Float("residual-sink-factor", t.residual_sink_factor, 1.0, 1e9);
  t.outlier_token_ratio = a.Float("outlier-token-ratio", t.outlier_token_ratio, 1.0, 1e9);
  a.Finish();
  return o;
}

std::filesystem::path NormalPath(const std::string& path) {
  std::filesystem::path p = std::filesystem::absolute(path).lexically_normal();
  return p.has_filename() ? p : p.parent_path();  // "dir/" -> "dir"
}

// After a failed run: removes the folders PrepareOutDir created, innermost first, as long as
// they are empty (remove() refuses a non-empty folder, which ends the walk).
void RemoveCreatedDirs(const std::string& out, const std::string& created) {
  std::error_code ec;
  if (created.empty()) return;
  for (std::filesystem::path p = NormalPath(out); p.string().size() >= created.size();
       p = p.parent_path()) {
    if (!std::filesystem::remove(p, ec)) break;
  }
}

// Creates --out and proves it is writable before the long run, so a typo fails in a second.
// Returns the folder to remove if the run fails (the outermost one it created), or "".
std::string PrepareOutDir(const std::string& out) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path created;
  for (fs::path p = NormalPath(out); !p.empty() && !fs::exists(p); p = p.parent_path()) {
    created = p;
    if (p == p.root_path()) break;
  }
  fs::create_directories(out, ec);
  Check(!ec && fs::is_directory(out), "--out " + out + ": cannot create the directory (" +
                                          (ec ? ec.message() : "a file is in the way") + ")");
  const std::string probe = (fs::path(out) / ".sinkquant-write-test").string();
  const bool ok = std::ofstream(probe).good();
  fs::remove(probe, ec);
  Check(ok, "--out " + out + ": directory is not writable");
  return created.string();
}

int Profile(const ProfileOptions& o);

int RunProfile(Args& a) {
  const ProfileOptions o = ParseProfileOptions(a);
  SetNumThreads(o.threads);
  const std::string created = PrepareOutDir(o.out);
  try {
    return Profile(o);
  } catch (...) {
    RemoveCreatedDirs(o.out, created);
    throw;
  }
}

int Profile(const ProfileOptions& o) {
  const std::string text = ReadTextFile(o.data);
  LoadedModel lm = LoadModel(o.model, o.tokenizer);
  const ModelConfig& c = lm.model.config;
  const int ctx = o.ctx > 0 ? o.ctx : std::min(c.max_position, 512);
  Check(ctx <= c.max_position, "--ctx " + std::to_string(ctx) +
                                   " exceeds the model's max_position_embeddings " +
                                   std::to_string(c.max_position));
  const auto all = MakeWindows(text, *lm.tokenizer, {ctx, 0}, o.data);
  const auto windows = SelectWindows(all, o.max_tokens, o.seed);
  long tokens = 0;
  for (const auto& w : windows) tokens += static_cast<long>(w.size());

  const Tokenizer& tok = *lm.tokenizer;
  const ProfileResult r = sq::RunProfile(lm.model, windows, o.th,
                                         [&](int id) { return tok.TokenText(id); },
                                         StderrProgress("profile", "layer", tokens));
  ProfileMeta meta;
  meta.model_path = lm.model_path;
  meta.tokenizer_path = lm.tokenizer_path;
  meta.data_path = o.data;
  meta.data_sha256 = Sha256File(o.data);
  meta.window_mode = SplitDocuments(text).empty() ? "consecutive" : "documents";
  meta.ctx = ctx;
  meta.max_tokens = o.max_tokens;
  meta.seed = o.seed;

  const std::string json_path = o.out + "/profile.json", html_path = o.out + "/report.html";
  WriteFilesAtomic({{json_path, ReportJson(ProfileToJson(r, meta), 1)},
                    {html_path, ProfileHtml(r, meta)}});
  std::printf("model: %s\ndata:  %s (%s, ctx %d)\n", lm.model_path.c_str(), o.data.c_str(),
              meta.window_mode.c_str(), ctx);
  std::printf("%s", ProfileSummary(r).c_str());
  std::printf("wrote %s and %s\n", json_path.c_str(), html_path.c_str());
  return 0;
}

const bool kRegistered = RegisterCommand(
    {"profile", "outlier channels, massive activations, attention and residual sinks",
     "--model PATH [--tokenizer PATH] --data FILE --out DIR [--max-tokens N] [--ctx N] "
     "[--seed S] [--threads N] [--outlier-ratio 20] [--massive-abs 100] [--massive-rel 1000] "
     "[--sink-mass 0.3] [--drain-ratio 0.2] [--residual-sink-factor 10] "
     "[--outlier-token-ratio 64]",
     RunProfile});

}  // namespace
}  // namespace sq
