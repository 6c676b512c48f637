// JPEG: marker walk, then libjpeg-turbo with the settings PIL uses (integer "islow" IDCT, fancy
// upsampling, its YCbCr -> RGB conversion), so that the 8-bit values are PIL's own.
#include <csetjmp>
#include <cstdio>  // jpeglib.h needs FILE and size_t declared first
#include <jpeglib.h>

#include <algorithm>

#include "chex/error.h"
#include "image_formats.h"

namespace chex::data::detail {
namespace {

// SOF0..SOF15 carry the frame size; 0xC4 (DHT), 0xC8 (JPG) and 0xCC (DAC) share the range.
bool is_start_of_frame(uint8_t marker) {
  return marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
}

// libjpeg reports fatal errors through a callback that must not return: jump back to the caller.
struct ErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void on_fatal_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Warnings (e.g. "premature end of data segment") are ignored, as PIL ignores them.
void on_message(j_common_ptr) {}

// The libjpeg calls, in a frame that holds only trivially destructible objects, so that the
// longjmp out of an error skips no destructor. Writes RGB rows into `out` (width * height * 3).
// Returns false with `err.message` set on failure.
bool run_libjpeg(std::span<const uint8_t> bytes, const JpegLayout& layout, uint8_t* out, ErrorManager& err) {
  jpeg_decompress_struct cinfo;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = on_fatal_error;
  err.pub.output_message = on_message;
  err.message[0] = '\0';
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  if (cinfo.image_width != layout.width || cinfo.image_height != layout.height) {
    std::snprintf(err.message, sizeof err.message, "the frame size differs from the first frame header's");
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  const bool grey = cinfo.jpeg_color_space == JCS_GRAYSCALE;
  if (!grey && cinfo.jpeg_color_space != JCS_YCbCr && cinfo.jpeg_color_space != JCS_RGB) {
    std::snprintf(err.message, sizeof err.message, "CMYK/YCCK JPEG files are not supported (colour space %d)",
                  static_cast<int>(cinfo.jpeg_color_space));
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  cinfo.out_color_space = grey ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  const size_t row_bytes = static_cast<size_t>(layout.width) * 3;
  // Grey rows are decoded into the last third of the output row, then spread from left to right
  // (each write lands at or before the sample it replaces has been read).
  while (cinfo.output_scanline < cinfo.output_height) {
    uint8_t* row = out + cinfo.output_scanline * row_bytes;
    JSAMPROW target = grey ? row + 2 * layout.width : row;
    if (jpeg_read_scanlines(&cinfo, &target, 1) != 1) break;
    if (grey)
      for (uint32_t x = 0; x < layout.width; ++x) std::fill_n(row + 3 * x, 3, target[x]);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
}

}  // namespace

bool is_jpeg(std::span<const uint8_t> b) { return b.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF; }

JpegLayout check_jpeg_structure(std::span<const uint8_t> b, const std::string& where, int max_scans) {
  JpegLayout s;
  size_t pos = 2;
  bool in_scan = false;
  while (true) {
    if (in_scan) {
      // The entropy-coded data runs to the next marker: 0xFF followed by anything but 0x00 (a
      // stuffed byte), 0xFF (fill) or a restart marker.
      while (pos + 1 < b.size()) {
        if (b[pos] != 0xFF) {
          ++pos;
        } else if (b[pos + 1] == 0x00 || (b[pos + 1] >= 0xD0 && b[pos + 1] <= 0xD7)) {
          pos += 2;
        } else if (b[pos + 1] == 0xFF) {
          ++pos;
        } else {
          break;
        }
      }
      in_scan = false;
    }
    CHEX_CHECK(pos + 1 < b.size(), where, ": the JPEG file is truncated (no end-of-image marker)");
    CHEX_CHECK(b[pos] == 0xFF, where, ": corrupt JPEG data (expected a marker at offset ", pos, ")");
    while (pos + 1 < b.size() && b[pos + 1] == 0xFF) ++pos;  // fill bytes before a marker
    CHEX_CHECK(pos + 1 < b.size(), where, ": the JPEG file is truncated (no end-of-image marker)");
    const uint8_t marker = b[pos + 1];
    pos += 2;
    if (marker == 0xD9) {
      CHEX_CHECK(s.scans > 0, where, ": the JPEG file ends before any image data");
      return s;
    }
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // markers without a segment
    CHEX_CHECK(pos + 2 <= b.size(), where, ": the JPEG file is truncated (in a marker segment)");
    const size_t length = be16(&b[pos]);
    CHEX_CHECK(length >= 2 && pos + length <= b.size(), where, ": the JPEG file is truncated or corrupt (a segment at ",
               "offset ", pos - 2, " declares ", length, " bytes)");
    if (is_start_of_frame(marker) && s.width == 0) {
      CHEX_CHECK(length >= 8, where, ": corrupt JPEG frame header");
      s.height = be16(&b[pos + 3]);
      s.width = be16(&b[pos + 5]);
      s.components = b[pos + 7];
      CHEX_CHECK(s.height > 0, where, ": JPEG files that declare their height after the image data are not supported");
    }
    pos += length;
    if (marker == 0xDA) {
      CHEX_CHECK(s.width > 0, where, ": corrupt JPEG data (a scan before the frame header)");
      CHEX_CHECK(++s.scans <= max_scans, where, ": the JPEG file has more than ", max_scans,
                 " scans (a real file has fewer than 20; this one would take very long to decode)");
      in_scan = true;
    }
  }
}

Image decode_jpeg(std::span<const uint8_t> bytes, const std::string& where, const JpegLayout& layout) {
  Image image = make_image(static_cast<int>(layout.width), static_cast<int>(layout.height));
  ErrorManager err;
  CHEX_CHECK(run_libjpeg(bytes, layout, image.pixels.data(), err), where, ": cannot decode the JPEG data (",
             err.message, ")");
  return image;
}

}  // namespace chex::data::detail
