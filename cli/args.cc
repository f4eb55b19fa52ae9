#include "cli/args.h"

#include <cstdlib>

#include "core/error.h"

namespace sq {

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
  Check(values_[name].empty(), command_ + ": flag --" + name + " takes no value, got '" +
                                   values_[name] + "'");
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

int Args::Int(const std::string& name, int def) {
  if (!Has(name)) return def;
  const std::string& v = values_[name];
  char* end = nullptr;
  long x = std::strtol(v.c_str(), &end, 10);
  Check(!v.empty() && *end == '\0' && x >= -(1L << 31) && x < (1L << 31),
        command_ + ": flag --" + name + " expects an integer, got '" + v + "'");
  return static_cast<int>(x);
}

double Args::Float(const std::string& name, double def) {
  if (!Has(name)) return def;
  const std::string& v = values_[name];
  char* end = nullptr;
  double x = std::strtod(v.c_str(), &end);
  Check(!v.empty() && *end == '\0', command_ + ": flag --" + name + " expects a number, got '" +
                                        v + "'");
  return x;
}

void Args::Finish() const {
  for (const auto& [name, value] : values_) {
    Check(used_.count(name) > 0, command_ + ": unknown flag --" + name);
  }
}

}  // namespace sq
