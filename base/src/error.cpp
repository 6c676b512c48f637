#include "chex/error.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <new>
#include <typeinfo>

namespace chex {

bool debug_requested() {
  const char* value = std::getenv("CHEX_DEBUG");
  return value && *value && std::string(value) != "0";
}

std::string describe_error(const std::exception& e, bool verbose) {
  std::string text = e.what();
  std::string details;
  if (const auto* error = dynamic_cast<const Error*>(&e)) {
    details = error->details();
  } else if (dynamic_cast<const std::bad_alloc*>(&e)) {
    text = "out of memory; use a smaller --batch-size or --image-size, or close other programs";
    details = e.what();
  } else if (const auto* fs = dynamic_cast<const std::filesystem::filesystem_error*>(&e)) {
    // "filesystem error: cannot create directories: No space left on device [path]" becomes
    // "cannot create directories '<path>': No space left on device".
    std::string operation = fs->what();
    if (operation.starts_with("filesystem error: ")) operation.erase(0, 18);
    const std::string cause = fs->code().message();
    if (const size_t at = operation.find(": " + cause); at != std::string::npos) operation.resize(at);
    text = operation + (fs->path1().empty() ? "" : " '" + fs->path1().string() + "'") + ": " + cause;
    details = fs->what();
  } else {
    details = std::string("exception type ") + typeid(e).name();
  }
  if (text.empty()) text = "unknown error";
  if (verbose && !details.empty()) text += "\n  details: " + details;
  return text;
}

void print_error(const char* program, const std::exception& e, bool verbose) {
  std::fprintf(stderr, "%s: error: %s\n", program, describe_error(e, verbose || debug_requested()).c_str());
}

namespace detail {

void throw_error(const char* statement, const char* file, int line, const std::string& message) {
  std::ostringstream details;
  if (statement) details << "check failed: " << statement << "; ";
  // Only the file name: full build paths say nothing.
  std::string path(file);
  const auto slash = path.find_last_of('/');
  details << "at " << (slash == std::string::npos ? path : path.substr(slash + 1)) << ":" << line;
  throw Error(message.empty() ? "internal error (run with CHEX_DEBUG=1 for details)" : message, details.str());
}

}  // namespace detail
}  // namespace chex
