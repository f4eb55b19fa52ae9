#include "core/atomic_file.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace sq {

void WriteFileAtomic(const std::string& path, const std::function<void(std::ostream&)>& write) {
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

}  // namespace sq
