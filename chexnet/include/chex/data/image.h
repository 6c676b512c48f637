#pragma once
// Decoding PNG, JPEG and DICOM files into 8-bit RGB. PNG and JPEG exactly as PIL's
// Image.open(path).convert('RGB') does, which is how every PyTorch chest X-ray pipeline reads them:
//   - grey (8-bit, or 1/2/4-bit scaled to 0..255) is replicated into R = G = B;
//   - grey + alpha and RGBA drop the alpha channel (no compositing over a background);
//   - 16-bit RGB, RGBA and grey + alpha keep the high byte of each sample;
//   - 16-bit grey (PIL mode "I") is clipped to 0..255, so every value above 255 becomes white. That
//     is PIL's behaviour, kept for parity; ImageSource::bits_per_sample lets a caller warn about it.
// DICOM (a Part 10 file, "DICM" at offset 128) is read by DCMTK and windowed to 8-bit grey as
// docs/dicom.md states: Modality LUT or Rescale Slope/Intercept, then the VOI LUT or Window
// Center/Width (else the image's min-max), MONOCHROME1 inverted; one greyscale frame, 8 or 16 bits
// allocated; colour, multi-frame and JPEG 2000 files are refused.
// PNG is decoded by stb_image (lossless: exact by construction) and JPEG by libjpeg-turbo with PIL's
// settings (stb's JPEG decoder differs from it by up to 3 grey levels).
// Files are treated as hostile: the format is recognised by its signature (only PNG, JPEG and DICOM
// reach a decoder), the structure is walked before decoding (truncation is an error, as in PIL), and
// the declared size is checked against the limits before any pixel memory is allocated.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace chex::data {

// 8-bit RGB, rows top to bottom, pixels interleaved: pixels[(y * width + x) * 3 + c].
struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;

  static constexpr int kChannels = 3;
  uint8_t at(int x, int y, int c) const { return pixels[(static_cast<size_t>(y) * width + x) * kChannels + c]; }
  uint8_t* row(int y) { return pixels.data() + static_cast<size_t>(y) * width * kChannels; }
  const uint8_t* row(int y) const { return pixels.data() + static_cast<size_t>(y) * width * kChannels; }
};

// An image of the given size, zero-filled.
Image make_image(int width, int height);

enum class ImageFormat { PNG, JPEG, DICOM };

// What the file held before conversion to RGB.
struct ImageSource {
  ImageFormat format = ImageFormat::PNG;
  int width = 0;
  int height = 0;
  int channels = 0;         // 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA (palettes count as expanded)
  int bits_per_sample = 8;  // 8 or 16 (DICOM: 16 when more than 8 bits are stored; windowed, never clipped)
};

// Refusals before decoding. The defaults admit any real radiograph (NIH's are 1024x1024, CR/DR
// detectors reach ~4300 pixels a side) while keeping a hostile file's allocation
// under ~1 GB.
struct DecodeLimits {
  int max_side = 16384;                  // pixels, each of width and height
  int64_t max_pixels = int64_t{1} << 26; // width * height (67 M pixels, 8192²: 200 MB as RGB)
  // Declared pixels per byte of file: a file beyond these ratios cannot hold the image its header
  // declares (a lying header), and decoding it would allocate and work for nothing. Deflate expands
  // at most ~1032:1 and a 1-bit PNG packs 8 pixels a byte (~8300); a JPEG spends at least 2 bits
  // on every 8x8 block (256), so both limits leave a margin of 2-4x.
  int64_t max_png_pixels_per_byte = 16384;
  int64_t max_jpeg_pixels_per_byte = 1024;
  // DICOM: uncompressed pixel data is checked exactly; RLE and JPEG-LS of a flat image compress
  // far beyond JPEG's ratio, hence PNG's bound.
  int64_t max_dicom_pixels_per_byte = 16384;
  // Progressive JPEGs with thousands of tiny scans make decoding quadratic; real files have < 20.
  int max_jpeg_scans = 100;
};

// Decodes an in-memory file; `origin` names it in errors. Throws chex::Error on anything that is
// not a well-formed PNG, JPEG or readable DICOM within the limits.
Image decode_image(std::span<const uint8_t> bytes, const std::string& origin, const DecodeLimits& limits = {},
                   ImageSource* source = nullptr);
// Reads and decodes a file (errors name the path).
Image load_image(const std::string& path, const DecodeLimits& limits = {}, ImageSource* source = nullptr);

}  // namespace chex::data
