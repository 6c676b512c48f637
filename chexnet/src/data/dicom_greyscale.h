#pragma once
// DICOM's greyscale pipeline down to chex's 8 bits (PS3.3 C.11): stored value -> Modality LUT or
// Rescale Slope/Intercept -> VOI LUT, else Window Center/Width, else the min-max of the image ->
// a fraction f in [0, 1] -> round(f * 255) (halves up) -> 255 - v for MONOCHROME1. Pure arithmetic,
// no DCMTK: docs/dicom.md states the same mapping for anyone reproducing it.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace chex::data::detail {

// A lookup table as the LUT Descriptor defines it: `values[x - first]`, clamped at both ends.
struct DicomLut {
  int64_t first = 0;
  int bits = 16;  // bits per entry: the table's output range is 0 .. 2^bits - 1
  std::vector<uint16_t> values;
  double lookup(double x) const;
};

enum class VoiFunction { Linear, LinearExact, Sigmoid };

struct DicomWindow {
  double center = 0, width = 0;
  VoiFunction function = VoiFunction::Linear;
};

struct DicomGreyscale {
  double slope = 1, intercept = 0;      // used when there is no modality LUT
  std::optional<DicomLut> modality_lut;
  std::optional<DicomLut> voi_lut;      // wins over the window, as in pydicom's apply_voi_lut
  std::optional<DicomWindow> window;
  bool monochrome1 = false;             // 0 is white: inverted after windowing
};

// Parses the VOI LUT Function (0028,1056); an empty string is LINEAR. Throws on others.
VoiFunction parse_voi_function(const std::string& value, const std::string& where);

// The 8-bit grey values of `stored` (already sign-extended stored values).
std::vector<uint8_t> dicom_to_8bit(std::span<const int32_t> stored, const DicomGreyscale& g);

}  // namespace chex::data::detail
