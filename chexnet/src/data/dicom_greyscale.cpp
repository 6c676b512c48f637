// The arithmetic of dicom_greyscale.h, step by step as PS3.3 C.11.1 (modality) and C.11.2 (VOI)
// write it, in double precision.
#include "dicom_greyscale.h"

#include <algorithm>
#include <cmath>

#include "chex/error.h"

namespace chex::data::detail {

double DicomLut::lookup(double x) const {
  double index = std::floor(x) - static_cast<double>(first);
  if (!(index > 0)) index = 0;  // NaN too: a hostile rescale must not index out of the table
  index = std::min(index, static_cast<double>(values.size()) - 1);
  return values[static_cast<size_t>(index)];
}

VoiFunction parse_voi_function(const std::string& value, const std::string& where) {
  if (value.empty() || value == "LINEAR") return VoiFunction::Linear;
  if (value == "LINEAR_EXACT") return VoiFunction::LinearExact;
  if (value == "SIGMOID") return VoiFunction::Sigmoid;
  CHEX_FAIL(where, ": unknown VOI LUT Function '", value,
            "' (DICOM defines LINEAR, LINEAR_EXACT and SIGMOID); the file is not valid DICOM");
}

namespace {

// The window as a fraction of the output range (C.11.2.1.2 and C.11.2.1.3).
double window_fraction(double x, const DicomWindow& w) {
  switch (w.function) {
    case VoiFunction::Linear: {
      const double c = w.center - 0.5, width = w.width - 1;
      if (x <= c - width / 2) return 0;
      if (x > c + width / 2) return 1;
      return (x - c) / width + 0.5;
    }
    case VoiFunction::LinearExact:
      if (x <= w.center - w.width / 2) return 0;
      if (x > w.center + w.width / 2) return 1;
      return (x - w.center) / w.width + 0.5;
    case VoiFunction::Sigmoid:
      return 1 / (1 + std::exp(-4 * (x - w.center) / w.width));
  }
  return 0;
}

// A window the standard forbids (LINEAR needs a width of at least 1, the others more than 0).
bool usable(const DicomWindow& w) {
  return std::isfinite(w.center) && std::isfinite(w.width) &&
         (w.function == VoiFunction::Linear ? w.width >= 1 : w.width > 0);
}

}  // namespace

std::vector<uint8_t> dicom_to_8bit(std::span<const int32_t> stored, const DicomGreyscale& g) {
  std::vector<double> value(stored.size());
  for (size_t i = 0; i < stored.size(); ++i)
    value[i] = g.modality_lut ? g.modality_lut->lookup(stored[i]) : stored[i] * g.slope + g.intercept;

  std::vector<double> fraction(stored.size());
  if (g.voi_lut) {
    const double top = std::ldexp(1.0, g.voi_lut->bits) - 1;
    for (size_t i = 0; i < value.size(); ++i) fraction[i] = g.voi_lut->lookup(value[i]) / top;
  } else if (g.window && usable(*g.window)) {
    for (size_t i = 0; i < value.size(); ++i) fraction[i] = window_fraction(value[i], *g.window);
  } else if (!value.empty()) {  // no VOI: stretch the image's own range (a flat image is black)
    const auto [lo, hi] = std::minmax_element(value.begin(), value.end());
    const double low = *lo, range = *hi - *lo;
    for (size_t i = 0; i < value.size(); ++i) fraction[i] = range > 0 ? (value[i] - low) / range : 0;
  }

  std::vector<uint8_t> out(stored.size());
  for (size_t i = 0; i < out.size(); ++i) {
    // NaN (an absurd rescale overflowing to infinity, say) becomes black rather than undefined.
    const double f = std::isfinite(fraction[i]) ? std::clamp(fraction[i], 0.0, 1.0) : 0.0;
    const auto v = static_cast<uint8_t>(std::floor(f * 255 + 0.5));
    out[i] = g.monochrome1 ? static_cast<uint8_t>(255 - v) : v;
  }
  return out;
}

}  // namespace chex::data::detail
