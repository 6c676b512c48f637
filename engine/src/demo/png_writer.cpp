#include "png_writer.h"

#include <stb_image_write.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "chex/error.h"

namespace chex::demo::detail {

void write_grey_png(const std::string& path, int width, int height, const std::vector<uint8_t>& pixels) {
  CHEX_CHECK(width > 0 && height > 0 && pixels.size() == static_cast<std::size_t>(width) * height, "write_grey_png: ",
             pixels.size(), " pixels for ", width, " x ", height);
  std::string encoded;
  const auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<std::size_t>(size));
  };
  CHEX_CHECK(stbi_write_png_to_func(append, &encoded, width, height, 1, pixels.data(), width) != 0,
             "cannot encode '", path, "' as PNG");
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
