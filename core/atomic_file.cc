#include "core/atomic_file.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/dist.h"
#include "core/error.h"
#include "core/input_file.h"

namespace sq {

void WriteFileAtomic(const std::string& path, const std::function<void(std::ostream&)>& write) {
  CheckOutputPath(path);
  if (dist::Rank() != 0) return;  // every rank holds the same result; one writes it
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  try {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    Check(out.good(), path + ": cannot write (is the folder there and writable?)");
    write(out);
    out.close();
    Check(!out.fail(), path + ": write failed (disk full?)");
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    const std::string why = ec.message();  // before remove() overwrites ec
    std::filesystem::remove(tmp, ec);
    throw Error(path + ": cannot rename into place: " + why);
  }
}

void WriteFileAtomic(const std::string& path, const std::string& content) {
  WriteFileAtomic(path, [&](std::ostream& out) { out.write(content.data(), content.size()); });
}

void WriteFilesAtomic(const std::vector<std::pair<std::string, std::string>>& files) {
  for (const auto& f : files) CheckOutputPath(f.first);
  if (dist::Rank() != 0) return;
  std::vector<std::string> tmps;
  auto remove_tmps = [&] {
    std::error_code ignored;
    for (const auto& t : tmps) std::filesystem::remove(t, ignored);
  };
  try {
    for (const auto& [path, content] : files) {
      tmps.push_back(path + ".tmp." + std::to_string(::getpid()));
      std::ofstream out(tmps.back(), std::ios::binary | std::ios::trunc);
      Check(out.good(), path + ": cannot write (is the folder there and writable?)");
      out.write(content.data(), static_cast<std::streamsize>(content.size()));
      out.close();
      Check(!out.fail(), path + ": write failed (disk full?)");
    }
    for (size_t i = 0; i < files.size(); ++i) {
      std::error_code ec;
      std::filesystem::rename(tmps[i], files[i].first, ec);
      Check(!ec, files[i].first + ": cannot rename into place: " + ec.message());
    }
  } catch (...) {
    remove_tmps();
    throw;
  }
}

}  // namespace sq
