#include "png_writer.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "chex/error.h"
#include "chex/io/png.h"

namespace chex::demo::detail {

void write_grey_png(const std::string& path, int width, int height, const std::vector<uint8_t>& pixels) {
  const std::string encoded = io::encode_png(width, height, 1, pixels, path);
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    CHEX_CHECK(out, "cannot create '", temporary, "': ", std::strerror(errno));
    out.write(encoded.data(), static_cast<std::streamsize>(encoded.size()));
    out.close();
    if (!out) {
      std::remove(temporary.c_str());
      CHEX_FAIL("writing '", path, "' failed (disk full or not writable)");
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    std::remove(temporary.c_str());
    CHEX_FAIL("cannot rename '", temporary, "' to '", path, "': ", reason);
  }
}

}  // namespace chex::demo::detail
