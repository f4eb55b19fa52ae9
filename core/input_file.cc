#include "core/input_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>
#include <utility>

#include "core/error.h"

namespace sq {

namespace {

using FileKey = std::pair<dev_t, ino_t>;

struct InputRegistry {
  std::mutex mu;
  int active = 0;  // live TrackInputs scopes
  std::set<FileKey> keys;
  std::set<std::pair<FileKey, std::string>> names;  // for messages
};

InputRegistry& Inputs() {
  static InputRegistry r;
  return r;
}

std::string KindOf(mode_t m) {
  if (S_ISDIR(m)) return "a folder";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISCHR(m) || S_ISBLK(m)) return "a device";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISLNK(m)) return "a symlink";
  return "not a regular file";
}

}  // namespace

int OpenInputFile(const std::string& path, uint64_t max_bytes, uint64_t* size) {
  // O_NONBLOCK: opening a FIFO with no writer would otherwise wait forever.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  Check(fd >= 0, "cannot open " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const mode_t mode = st.st_mode;
    ::close(fd);
    throw Error(path + ": is " + KindOf(mode) + ", not a regular file");
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    throw Error(path + ": file is " + std::to_string(st.st_size) + " bytes, over the " +
                std::to_string(max_bytes) + "-byte limit for this input");
  }
  *size = static_cast<uint64_t>(st.st_size);
  InputRegistry& r = Inputs();
  std::lock_guard<std::mutex> lock(r.mu);
  if (r.active == 0) return fd;
  r.keys.insert({st.st_dev, st.st_ino});
  r.names.insert({{st.st_dev, st.st_ino}, path});
  return fd;
}

std::string ReadInputFile(const std::string& path, uint64_t max_bytes) {
  uint64_t size = 0;
  const int fd = OpenInputFile(path, max_bytes, &size);
  std::string out(size, '\0');
  uint64_t done = 0;
  while (done < size) {
    const ssize_t n = ::read(fd, out.data() + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      throw Error(path + ": read failed" + (n < 0 ? std::string(": ") + std::strerror(err)
                                                  : std::string(" (file shrank while reading)")));
    }
    done += static_cast<uint64_t>(n);
  }
  ::close(fd);
  return out;
}

TrackInputs::TrackInputs() {
  std::lock_guard<std::mutex> lock(Inputs().mu);
  ++Inputs().active;
}

TrackInputs::~TrackInputs() {
  InputRegistry& r = Inputs();
  std::lock_guard<std::mutex> lock(r.mu);
  if (--r.active > 0) return;
  r.keys.clear();
  r.names.clear();
}

void CheckOutputPath(const std::string& path) {
  struct stat lst {};
  if (::lstat(path.c_str(), &lst) != 0) return;  // a new file
  Check(S_ISREG(lst.st_mode), path + ": output exists and is " + KindOf(lst.st_mode) +
                                  ": refusing to replace it");
  InputRegistry& r = Inputs();
  std::lock_guard<std::mutex> lock(r.mu);
  const FileKey key{lst.st_dev, lst.st_ino};
  if (!r.keys.count(key)) return;
  std::string input;
  for (const auto& [k, name] : r.names) {
    if (k == key) input = name;
  }
  throw Error(path + ": output is the same file as the input " + input +
              ": refusing to overwrite an input");
}

bool SameFile(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

}  // namespace sq
