#include "files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "chex/error.h"

namespace chex::train {

void write_text_atomically(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp" + std::to_string(getpid());
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  CHEX_CHECK(fd >= 0, "cannot create '", temporary, "': ", std::strerror(errno));
  size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = errno;
      ::close(fd);
      std::remove(temporary.c_str());
      CHEX_FAIL("cannot write '", path, "': ", std::strerror(error),
                " (the previous version is unchanged); free some space or choose another --out, then run again "
                "with --resume");
    }
    written += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  const int error = errno;
  ::close(fd);
  if (!synced || std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    CHEX_FAIL("cannot write '", path, "': ", std::strerror(synced ? errno : error), " (the previous version is unchanged)");
  }
}

}  // namespace chex::train
