// The CAM gallery: overlays (already drawn, as PNG files) inline as base64 data URIs.
#include <sstream>

#include "chex/report/svg.h"
#include "sections.h"

namespace chex::report::detail {

std::string base64(const std::string& bytes) {
  static constexpr char kDigits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, bytes.size() - i);
    uint32_t group = 0;
    for (std::size_t k = 0; k < 3; ++k)
      group = (group << 8) | (k < n ? static_cast<uint8_t>(bytes[i + k]) : 0u);
    for (std::size_t k = 0; k < 4; ++k) out += k <= n ? kDigits[(group >> (18 - 6 * k)) & 63] : '=';
  }
  return out;
}

std::string gallery_section(const ReportInputs& in) {
  std::ostringstream out;
  out << "<section id=\"gallery\"><h2>Where the model looks</h2>\n";
  if (!in.gallery_note.empty()) out << "<p class=\"note\">" << escape(in.gallery_note) << "</p>\n";
  for (const GalleryRow& row : in.gallery) {
    out << "<div class=\"gallery-row\"><h3>" << escape(row.title) << "</h3><div class=\"gallery\">\n";
    if (row.images.empty()) out << "<p class=\"note\">none among these images</p>\n";
    for (const GalleryImage& image : row.images)
      out << "<figure><img alt=\"" << escape(image.caption) << "\" src=\"data:image/png;base64," << base64(image.png)
          << "\"><figcaption>" << escape(image.caption) << "</figcaption></figure>\n";
    out << "</div></div>\n";
  }
  out << "</section>\n";
  return out.str();
}

}  // namespace chex::report::detail
