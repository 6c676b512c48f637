#pragma once
// Errors: every check throws chex::Error. Its what() is the sentence for the user (what is wrong and
// what to do); details() is for whoever debugs: the failed check and its source file and line.
// Programs catch it at main() and print the sentence, and the details only when asked (--verbose or
// CHEX_DEBUG=1): see print_error below.
#include <exception>
#include <sstream>
#include <stdexcept>
#include <string>

namespace chex {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, std::string details = {})
      : std::runtime_error(message), details_(std::move(details)) {}
  // "check failed: <expression>; at <file>:<line>", or empty for an error built without one.
  const std::string& details() const noexcept { return details_; }

 private:
  std::string details_;
};

// True when the environment variable CHEX_DEBUG is set to anything but "" or "0".
bool debug_requested();

// What a program prints for an error caught at main(): the sentence, then, when `verbose`, the
// details on a second line. Errors that are not chex::Error are worded too (out of memory, a
// filesystem error).
std::string describe_error(const std::exception& e, bool verbose);

// Prints "<program>: error: <describe_error>\n" to stderr; verbose = `verbose || debug_requested()`.
void print_error(const char* program, const std::exception& e, bool verbose);

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

// CHEX_CHECK(condition, message parts...): throws chex::Error with the message as its what() and
// the condition, file and line as its details().
#define CHEX_CHECK(cond, ...)                                                                     \
  do {                                                                                            \
    if (!(cond)) [[unlikely]]                                                                     \
      ::chex::detail::throw_error(#cond, __FILE__, __LINE__, ::chex::detail::concat(__VA_ARGS__)); \
  } while (0)

// CHEX_FAIL(message parts...): an unconditional error with the same context.
#define CHEX_FAIL(...) ::chex::detail::throw_error(nullptr, __FILE__, __LINE__, ::chex::detail::concat(__VA_ARGS__))
