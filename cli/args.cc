#include "cli/args.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>

#include <unistd.h>

#include "core/error.h"
#include "core/strings.h"

namespace sq {

namespace {

std::string FormatNumber(double x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", x);
  return buf;
}

}  // namespace

Args::Args(std::string command, const std::vector<std::string>& argv)
    : command_(std::move(command)) {
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    Check(a.size() > 2 && a.rfind("--", 0) == 0,
          command_ + ": unexpected argument '" + a + "' (flags look like --name value)");
    std::string name = a.substr(2), value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (i + 1 < argv.size() && argv[i + 1].rfind("--", 0) != 0) {
      value = argv[++i];
    }
    Check(!values_.count(name), command_ + ": flag --" + name + " given twice");
    values_[name] = value;
  }
}

bool Args::Has(const std::string& name) {
  used_.insert(name);
  return values_.count(name) > 0;
}

bool Args::Flag(const std::string& name) {
  if (!Has(name)) return false;
  Check(values_[name].empty(),
        command_ + ": flag --" + name + " takes no value, got '" + values_[name] + "'");
  return true;
}

std::string Args::Str(const std::string& name, const std::string& def) {
  if (!Has(name)) return def;
  Check(!values_[name].empty(), command_ + ": flag --" + name + " needs a value");
  return values_[name];
}

std::string Args::Required(const std::string& name) {
  Check(Has(name), command_ + ": missing required flag --" + name);
  return Str(name, "");
}

std::string Args::OutputFile(const std::string& name, bool required) {
  const std::string path = required ? Required(name) : Str(name, "");
  if (path.empty()) return path;
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const std::string folder = parent.empty() ? "." : parent.string();
  std::error_code ec;
  Check(std::filesystem::is_directory(folder, ec),
        command_ + ": --" + name + " " + path + ": folder " + folder + " does not exist");
  Check(::access(folder.c_str(), W_OK | X_OK) == 0,
        command_ + ": --" + name + " " + path + ": folder " + folder + " is not writable");
  return path;
}

namespace {

// One decimal integer `v` of flag --name (a value or a list item), within [min, max].
int ParseIntValue(const std::string& command, const std::string& name, const std::string& v,
                  long min, long max) {
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(v.c_str(), &end, 10);
  const bool syntax = !v.empty() && (std::isdigit(static_cast<unsigned char>(v[0])) || v[0] == '-');
  Check(syntax && *end == '\0' && errno != ERANGE,
        command + ": flag --" + name + " expects an integer, got '" + v + "'");
  Check(x >= min && x <= max, command + ": flag --" + name + " must be between " +
                                  std::to_string(min) + " and " + std::to_string(max) + ", got " +
                                  v);
  return static_cast<int>(x);
}

}  // namespace

int Args::Int(const std::string& name, int def, long min, long max) {
  if (!Has(name)) return def;
  return ParseIntValue(command_, name, values_[name], min, max);
}

std::vector<int> Args::IntList(const std::string& name, long min, long max) {
  std::vector<int> out;
  if (!Has(name)) return out;
  for (const std::string& item : SplitList(values_[name], ',')) {
    out.push_back(ParseIntValue(command_, name, item, min, max));
  }
  return out;
}

int Args::IntOneOf(const std::string& name, int def, const std::vector<int>& allowed) {
  const int x = Int(name, def, std::numeric_limits<int>::min(), kIntMax);
  std::string list;
  for (int a : allowed) {
    if (x == a) return x;
    list += (list.empty() ? "" : ", ") + std::to_string(a);
  }
  throw Error(command_ + ": flag --" + name + " must be one of " + list + ", got " +
              std::to_string(x));
}

double Args::Float(const std::string& name, double def, double min, double max) {
  if (!Has(name)) return def;
  const std::string& v = values_[name];
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  Check(!v.empty() && *end == '\0' && std::isfinite(x),
        command_ + ": flag --" + name + " expects a finite number, got '" + v + "'");
  Check(x >= min && x <= max, command_ + ": flag --" + name + " must be between " +
                                  FormatNumber(min) + " and " + FormatNumber(max) + ", got " + v);
  return x;
}

void Args::Finish() const {
  for (const auto& [name, value] : values_) {
    Check(used_.count(name) > 0, command_ + ": unknown flag --" + name);
  }
}

int ThreadsFlag(Args& a) { return a.Int("threads", 0, 0, kMaxThreads); }
int CtxFlag(Args& a) { return a.Int("ctx", 0, 0, kMaxCtx); }
int TokensFlag(Args& a, const std::string& name) { return a.Int(name, 0, 0, kIntMax); }
int SeedFlag(Args& a) { return a.Int("seed", 0, 0, kIntMax); }

MatmulPrecision MatmulPrecisionFlag(Args& a) {
  return a.OneOf<MatmulPrecision>(
      "matmul-precision", "f32",
      {{"f32", MatmulPrecision::kF32}, {"bf16", MatmulPrecision::kBf16}});
}

}  // namespace sq
