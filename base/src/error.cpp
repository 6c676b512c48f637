#include "chex/error.h"

namespace chex::detail {

void throw_error(const char* statement, const char* file, int line, const std::string& message) {
  std::ostringstream out;
  out << message;
  if (statement) out << (message.empty() ? "" : " ") << "[check failed: " << statement << "]";
  // Only the file name: full build paths say nothing to a user.
  std::string path(file);
  auto slash = path.find_last_of('/');
  out << " (" << (slash == std::string::npos ? path : path.substr(slash + 1)) << ":" << line << ")";
  throw Error(out.str());
}

}  // namespace chex::detail
