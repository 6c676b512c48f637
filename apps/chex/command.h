#pragma once
// The `chex` program's subcommands. Each lives in its own file and is listed in main.cpp; adding
// one (cam, eval, localize) is a new file and a line there.
#include <string>
#include <vector>

#include "chex/error.h"

namespace chex::cli {

// Bad command-line use: main prints it with a pointer to --help and exits with kExitUsage.
class UsageError : public Error {
 public:
  using Error::Error;
};

// An error about the user's input, worded for the user (no source location: nothing to debug).
template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  throw Error(detail::concat(parts...));
}

// Exit statuses shared by every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;    // nothing (or nothing trustworthy) was produced
inline constexpr int kExitUsage = 2;
inline constexpr int kExitPartial = 3;  // the output was written, but some inputs were skipped

struct Command {
  const char* name;
  const char* summary;  // one line for `chex --help`
  int (*run)(const std::vector<std::string>& args);  // arguments after the subcommand's name
};

int run_predict(const std::vector<std::string>& args);
int run_eval(const std::vector<std::string>& args);
int run_make_demo(const std::vector<std::string>& args);
int run_cam(const std::vector<std::string>& args);
int run_localize(const std::vector<std::string>& args);
int run_report(const std::vector<std::string>& args);

}  // namespace chex::cli
