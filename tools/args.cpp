#include "tools/args.h"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "engine/error.h"

namespace rotor {

Args::Args(std::string command, std::string synopsis, std::string description)
    : command_(std::move(command)),
      synopsis_(std::move(synopsis)),
      description_(std::move(description)) {
  flag("help", 'h', "show this help and exit");
}

void Args::option(const std::string& long_name, char short_name, const std::string& value_name,
                  const std::string& help, const std::string& default_text) {
  specs_.push_back({long_name, value_name, help, default_text, short_name});
}

void Args::flag(const std::string& long_name, char short_name, const std::string& help) {
  specs_.push_back({long_name, "", help, "", short_name});
}

void Args::positionals(const std::string& names, int required) {
  positional_names_ = names;
  required_positionals_ = required;
}

const Args::Spec* Args::find_long(const std::string& name) const {
  for (const Spec& s : specs_)
    if (s.long_name == name) return &s;
  return nullptr;
}

const Args::Spec* Args::find_short(char c) const {
  for (const Spec& s : specs_)
    if (s.short_name && s.short_name == c) return &s;
  return nullptr;
}

bool Args::parse(int argc, char** argv) {
  const std::string see = " (see 'rotor " + command_ + " --help')";
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    const Spec* spec = nullptr;
    std::string value;
    bool inline_value = false;
    if (a.size() > 2 && a.compare(0, 2, "--") == 0) {
      std::string name = a.substr(2);
      size_t eq = name.find('=');
      if (eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        inline_value = true;
      }
      spec = find_long(name);
      if (!spec) throw Error("unknown option '--" + name + "'" + see);
    } else if (a.size() == 2 && a[0] == '-' && a[1] != '-') {
      spec = find_short(a[1]);
      if (!spec) throw Error("unknown option '" + a + "'" + see);
    } else {
      positional_.push_back(a);
      continue;
    }
    const std::string shown = "--" + spec->long_name;
    if (spec->value_name.empty()) {
      if (inline_value) throw Error("option '" + shown + "' takes no value" + see);
      values_[spec->long_name] = "1";
    } else {
      if (!inline_value) {
        if (i + 1 >= argc) throw Error("option '" + shown + "' needs a value" + see);
        value = argv[++i];
      }
      values_[spec->long_name] = value;
    }
  }
  if (has("help")) {
    std::fputs(help().c_str(), stdout);
    return false;
  }
  if (static_cast<int>(positional_.size()) < required_positionals_)
    throw Error("missing argument " + positional_names_ + see);
  if (positional_names_.empty() && !positional_.empty())
    throw Error("unexpected argument '" + positional_[0] + "'" + see);
  return true;
}

bool Args::has(const std::string& name) const { return values_.count(name) != 0; }

std::string Args::get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

long long Args::get_int(const std::string& name, long long fallback, long long lo,
                        long long hi) const {
  if (!has(name)) return fallback;
  const std::string s = get(name);
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno == ERANGE)
    throw Error("option '--" + name + "' needs an integer, got '" + s + "'");
  if (v < lo || v > hi)
    throw Error("option '--" + name + "' = " + s + " is out of range [" + std::to_string(lo) +
                ", " + std::to_string(hi) + "]");
  return v;
}

double Args::get_float(const std::string& name, double fallback, double lo, double hi) const {
  if (!has(name)) return fallback;
  const std::string s = get(name);
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !(v == v))
    throw Error("option '--" + name + "' needs a number, got '" + s + "'");
  if (v < lo || v > hi) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "' = %s is out of range [%g, %g]", s.c_str(), lo, hi);
    throw Error("option '--" + name + buf);
  }
  return v;
}

int Args::get_choice(const std::string& name, int fallback,
                     std::initializer_list<int> allowed) const {
  const int v = static_cast<int>(get_int(name, fallback, INT32_MIN, INT32_MAX));
  for (int a : allowed)
    if (v == a) return v;
  std::string list;
  for (int a : allowed) list += (list.empty() ? "" : ", ") + std::to_string(a);
  throw Error("option '--" + name + "' = " + std::to_string(v) + " is not one of " + list);
}

std::string Args::help() const {
  std::string h = "Usage: rotor " + command_ + " " + synopsis_ + "\n\n" + description_ + "\n\nOptions:\n";
  for (const Spec& s : specs_) {
    std::string left = "  ";
    left += s.short_name ? std::string("-") + s.short_name + ", " : "    ";
    left += "--" + s.long_name;
    if (!s.value_name.empty()) left += " " + s.value_name;
    if (left.size() < 28) left.resize(28, ' ');
    else left += "\n" + std::string(28, ' ');
    h += left + s.help;
    if (!s.default_text.empty()) h += " [" + s.default_text + "]";
    h += "\n";
  }
  return h;
}

}  // namespace rotor
