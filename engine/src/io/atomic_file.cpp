#include "chex/io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "chex/error.h"

namespace chex::io {

void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write) {
  // Renaming over a device or a folder would replace it: only regular files (or new names) are written.
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  CHEX_CHECK(!std::filesystem::exists(status) || std::filesystem::is_regular_file(status), "cannot write '", path,
             "': it exists and is not a regular file");
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    CHEX_CHECK(out, "cannot write '", path, "': creating '", temporary, "' failed: ", std::strerror(errno),
               "; check that the folder exists and that you can write there");
    try {
      write(out);
    } catch (...) {
      out.close();
      std::remove(temporary.c_str());
      throw;
    }
    out.flush();
    const bool ok = static_cast<bool>(out);
    out.close();
    if (!ok || out.fail()) {
      std::remove(temporary.c_str());
      CHEX_FAIL("writing '", path, "' failed (disk full or not writable); the previous file, if any, is untouched: "
                "free some space or write elsewhere, then try again");
    }
  }
  // Make the data durable before the rename makes it visible.
  const int fd = ::open(temporary.c_str(), O_RDONLY);
  if (fd >= 0) {
    const int rc = ::fsync(fd);
    const int error = errno;  // before close() and remove() can change it
    ::close(fd);
    if (rc != 0) {
      std::remove(temporary.c_str());
      CHEX_FAIL("writing '", path, "' failed: ", std::strerror(error),
                " while flushing it to disk; the previous file, if any, is untouched");
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    std::remove(temporary.c_str());
    CHEX_FAIL("cannot rename '", temporary, "' to '", path, "': ", reason);
  }
}

}  // namespace chex::io
