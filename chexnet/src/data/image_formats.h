#pragma once
// The format-specific halves of data::decode_image: a structural walk of the file that stops a
// hostile or truncated one before any decoder runs, and the decoder itself (the same library PIL
// uses for each format where that matters for exactness).
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "chex/data/image.h"

class DcmFileFormat;  // DCMTK's parsed file (dicom_decode.cpp); kept out of this header

namespace chex::data::detail {

inline uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
inline uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

// --- PNG (decoded by stb_image: lossless, so any correct decoder gives PIL's values) ------------
struct PngLayout {
  uint32_t width = 0, height = 0;
  int bit_depth = 0, color_type = 0;
};
bool is_png(std::span<const uint8_t> bytes);
// IHDR first, every chunk inside the file, IEND present.
PngLayout check_png_structure(std::span<const uint8_t> bytes, const std::string& where);
// The pixels as PIL's convert('RGB') makes them (see chex/data/image.h); `channels` receives the
// channel count stb decoded (palettes expanded, tRNS adds alpha).
Image decode_png(std::span<const uint8_t> bytes, const std::string& where, const PngLayout& layout, int& channels);

// --- JPEG (decoded by libjpeg-turbo with PIL's settings: stb's IDCT and colour conversion differ
// from it by up to 3 grey levels) ---------------------------------------------------------------
struct JpegLayout {
  uint32_t width = 0, height = 0;  // from the first start-of-frame segment
  int components = 0;
  int scans = 0;
};
bool is_jpeg(std::span<const uint8_t> bytes);
// Marker segments inside the file, a frame header before the first scan, at most `max_scans`
// scans, and an end-of-image marker (PIL reports a file without one as truncated; libjpeg would
// quietly fill the rest with grey).
JpegLayout check_jpeg_structure(std::span<const uint8_t> bytes, const std::string& where, int max_scans);
Image decode_jpeg(std::span<const uint8_t> bytes, const std::string& where, const JpegLayout& layout);

// --- DICOM (parsed and decompressed by DCMTK, windowed to 8 bits by dicom_greyscale.h) ----------
struct DicomLayout {
  uint32_t width = 0, height = 0;
  int bits_stored = 0;
  std::shared_ptr<DcmFileFormat> file;  // parsed once, decoded by decode_dicom
};
// "DICM" at offset 128 (a DICOM Part 10 file; a bare data set without that header is refused).
bool is_dicom(std::span<const uint8_t> bytes);
// Every element, item and fragment inside the file, sequences at most 16 deep (dicom_structure.cpp),
// before DCMTK allocates what the lengths declare.
void check_dicom_lengths(std::span<const uint8_t> bytes, const std::string& where);
// Walks the lengths, parses the file and checks what chex can read: one greyscale frame (MONOCHROME1 or 2), 8-16
// bits stored, pixel data present, a transfer syntax DCMTK can decode.
DicomLayout check_dicom_structure(std::span<const uint8_t> bytes, const std::string& where);
Image decode_dicom(const DicomLayout& layout, const std::string& where);

}  // namespace chex::data::detail
