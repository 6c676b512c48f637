#pragma once
// A small command-line parser: "--name value", "--name=value", flags, and positional arguments
// ("--" ends the options). Mistakes throw cli::UsageError naming the option.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace chex::cli {

struct OptionSpec {
  std::string name;  // without the dashes: "batch-size"
  bool takes_value = true;
  char short_name = 0;  // e.g. 'h' for -h
};

class Args {
 public:
  Args(const std::vector<std::string>& args, const std::vector<OptionSpec>& options, const std::string& command);

  bool has(const std::string& name) const { return values_.contains(name); }
  // With --help: prints `usage` to standard output and returns true (the command then exits 0).
  bool help(const char* usage) const;
  std::optional<std::string> value(const std::string& name) const;
  std::string required(const std::string& name) const;
  // An integer option within [min, max], or `fallback` when absent.
  int64_t integer(const std::string& name, int64_t fallback, int64_t min, int64_t max) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::string command_;
  std::map<std::string, std::string> values_;  // flags map to ""
  std::vector<std::string> positional_;
};

}  // namespace chex::cli

namespace chex::cli {

// Removes "--name A B C" (the values up to the next option) from `args` and returns the values, for
// options that take several files (chex eval --readers R1.csv R2.csv ...). Repeats accumulate.
std::vector<std::string> take_list_option(std::vector<std::string>& args, const std::string& name);

}  // namespace chex::cli
