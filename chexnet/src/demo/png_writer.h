#pragma once
// 8-bit grey PNG files, written atomically: a temporary beside the target, then a rename, so a
// reader sees the whole image or none. Unlike io::write_file_atomically there is no fsync per
// image: the images can be made again, and an fsync for each of thousands of small files costs
// more than drawing them; the dataset's label file, written last and synced, marks it complete.
#include <cstdint>
#include <string>
#include <vector>

namespace chex::demo::detail {

void write_grey_png(const std::string& path, int width, int height, const std::vector<uint8_t>& pixels);

}  // namespace chex::demo::detail
