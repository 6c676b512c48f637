// decode_image: recognise the format by its signature, walk its structure, check the declared size
// against the limits, and only then hand the file to a decoder.
#include "chex/data/image.h"

#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "chex/error.h"
#include "image_formats.h"

namespace chex::data {

Image make_image(int width, int height) {
  CHEX_CHECK(width >= 0 && height >= 0, "make_image: negative size ", width, "x", height);
  Image image;
  image.width = width;
  image.height = height;
  image.pixels.assign(static_cast<size_t>(width) * height * Image::kChannels, 0);
  return image;
}

Image decode_image(std::span<const uint8_t> bytes, const std::string& origin, const DecodeLimits& limits,
                   ImageSource* source) {
  const std::string where = "image '" + origin + "'";
  CHEX_CHECK(!bytes.empty(), where, ": the file is empty");
  CHEX_CHECK(bytes.size() <= static_cast<size_t>(INT_MAX), where, ": the file is too large (", bytes.size(),
             " bytes; at most 2 GiB)");
  ImageSource info;
  detail::PngLayout png;
  detail::JpegLayout jpeg;
  detail::DicomLayout dicom;
  uint32_t width = 0, height = 0;
  if (detail::is_png(bytes)) {
    info.format = ImageFormat::PNG;
    png = detail::check_png_structure(bytes, where);
    width = png.width, height = png.height;
  } else if (detail::is_jpeg(bytes)) {
    info.format = ImageFormat::JPEG;
    jpeg = detail::check_jpeg_structure(bytes, where, limits.max_jpeg_scans);
    width = jpeg.width, height = jpeg.height;
  } else if (detail::is_dicom(bytes)) {
    info.format = ImageFormat::DICOM;
    dicom = detail::check_dicom_structure(bytes, where);
    width = dicom.width, height = dicom.height;
  } else {
    CHEX_FAIL(where, ": not a PNG, JPEG or DICOM file (unrecognised signature)");
  }

  // Decoders allocate what the header asks for: check it first.
  CHEX_CHECK(width > 0 && height > 0, where, ": invalid image size ", width, "x", height);
  CHEX_CHECK(width <= static_cast<uint32_t>(limits.max_side) && height <= static_cast<uint32_t>(limits.max_side),
             where, ": the image is ", width, "x", height, ", larger than the limit of ", limits.max_side,
             " pixels a side");
  const int64_t pixels = int64_t{width} * height;
  CHEX_CHECK(pixels <= limits.max_pixels, where, ": the image is ", width, "x", height, " (", pixels,
             " pixels), more than the limit of ", limits.max_pixels);
  const int64_t density = info.format == ImageFormat::PNG    ? limits.max_png_pixels_per_byte
                          : info.format == ImageFormat::JPEG ? limits.max_jpeg_pixels_per_byte
                                                             : limits.max_dicom_pixels_per_byte;
  CHEX_CHECK(pixels <= density * static_cast<int64_t>(bytes.size()), where, ": the header declares ", width, "x",
             height, " pixels, more than a file of ", bytes.size(), " bytes can hold; the file is corrupt");

  Image image;
  if (info.format == ImageFormat::PNG) {
    int channels = 0;
    image = detail::decode_png(bytes, where, png, channels);
    info.channels = png.color_type == 0 ? 1 : channels;  // a tRNS chunk makes stb add alpha to grey
    info.bits_per_sample = png.bit_depth == 16 ? 16 : 8;
  } else if (info.format == ImageFormat::JPEG) {
    image = detail::decode_jpeg(bytes, where, jpeg);
    info.channels = jpeg.components;
  } else {
    image = detail::decode_dicom(dicom, where);
    info.channels = 1;
    info.bits_per_sample = dicom.bits_stored > 8 ? 16 : 8;
  }
  info.width = image.width;
  info.height = image.height;
  if (source) *source = info;
  return image;
}

Image load_image(const std::string& path, const DecodeLimits& limits, ImageSource* source) {
  std::error_code ec;
  CHEX_CHECK(!std::filesystem::exists(path, ec) || std::filesystem::is_regular_file(path, ec), "image '", path,
             "': cannot read it, it is not a regular file (a folder?)");
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  CHEX_CHECK(in, "image '", path, "': cannot open it (", std::strerror(errno), ")");
  const std::streamoff size = in.tellg();
  CHEX_CHECK(size >= 0 && size <= INT_MAX, "image '", path, "': ",
             size < 0 ? "its size is unknown" : "the file is larger than 2 GiB");
  in.seekg(0);
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  CHEX_CHECK(in.read(reinterpret_cast<char*>(bytes.data()), size), "cannot read image '", path, "'");
  return decode_image(bytes, path, limits, source);
}

}  // namespace chex::data
