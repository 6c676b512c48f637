#pragma once
// Errors: every check throws chex::Error carrying the failing statement, file and line, so a user
// sees what went wrong and where without a debugger. Programs catch it at main().
#include <sstream>
#include <stdexcept>
#include <string>

namespace chex {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
[[noreturn]] void throw_error(const char* statement, const char* file, int line, const std::string& message);

// Streams any number of arguments into one string: CHEX_CHECK(ok, "shape ", s, " is bad").
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}
}  // namespace detail

}  // namespace chex

// CHEX_CHECK(condition, message parts...): throws chex::Error naming the condition, file and line.
#define CHEX_CHECK(cond, ...)                                                                     \
  do {                                                                                            \
    if (!(cond)) [[unlikely]]                                                                     \
      ::chex::detail::throw_error(#cond, __FILE__, __LINE__, ::chex::detail::concat(__VA_ARGS__)); \
  } while (0)

// CHEX_FAIL(message parts...): an unconditional error with the same context.
#define CHEX_FAIL(...) ::chex::detail::throw_error(nullptr, __FILE__, __LINE__, ::chex::detail::concat(__VA_ARGS__))
