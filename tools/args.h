// Command-line options of one subcommand: declared once, parsed strictly (an unknown flag or a
// malformed value is an Error naming it), and rendered as that subcommand's --help.
#pragma once
#include <initializer_list>
#include <map>
#include <string>
#include <vector>

namespace rotor {

class Args {
 public:
  Args(std::string command, std::string synopsis, std::string description);

  // An option that takes a value; default_text is shown in --help ("" = no default).
  void option(const std::string& long_name, char short_name, const std::string& value_name,
              const std::string& help, const std::string& default_text = "");
  // An on/off flag.
  void flag(const std::string& long_name, char short_name, const std::string& help);
  // Positional arguments: their names for --help, and how many are required.
  void positionals(const std::string& names, int required);

  // Returns false when --help was asked for (the help is printed to stdout).
  bool parse(int argc, char** argv);

  bool has(const std::string& name) const;
  std::string get(const std::string& name, const std::string& fallback = "") const;
  // Typed getters: an unparsable or out-of-range value is an Error naming the flag.
  long long get_int(const std::string& name, long long fallback, long long lo, long long hi) const;
  double get_float(const std::string& name, double fallback, double lo, double hi) const;
  // An integer that must be one of `allowed`; an Error lists them otherwise.
  int get_choice(const std::string& name, int fallback, std::initializer_list<int> allowed) const;
  const std::vector<std::string>& positional() const { return positional_; }
  std::string help() const;

 private:
  struct Spec {
    std::string long_name, value_name, help, default_text;
    char short_name;
  };
  const Spec* find_long(const std::string& name) const;
  const Spec* find_short(char c) const;

  std::string command_, synopsis_, description_, positional_names_;
  int required_positionals_ = 0;
  std::vector<Spec> specs_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

}  // namespace rotor
