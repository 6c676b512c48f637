#include "chex/data/box_file.h"

#include <cmath>
#include <cstdlib>

#include "chex/data/labels.h"
#include "chex/error.h"
#include "csv_fields.h"

namespace chex::data {
namespace {

using detail::trim_blanks;

double parse_coordinate(std::string_view text, const char* what, const std::string& origin, int line) {
  const std::string s(trim_blanks(text));
  char* end = nullptr;
  const double value = s.empty() ? NAN : std::strtod(s.c_str(), &end);
  CHEX_CHECK(!s.empty() && end == s.c_str() + s.size() && std::isfinite(value), origin, ":", line, ": bad ", what,
             " '", s, "' (expected a number)");
  return value;
}

}  // namespace

std::vector<BoxRecord> parse_box_csv(std::string_view text, const std::string& origin) {
  const std::vector<std::string_view> lines = detail::split_lines(text);
  CHEX_CHECK(!lines.empty() && !lines[0].empty(), origin, ": the box file is empty (no header line)");
  const std::vector<std::string> header = detail::split_csv_fields(lines[0], origin, 1);
  CHEX_CHECK(header.size() >= 3 && trim_blanks(header[0]) == "Image Index" &&
                 trim_blanks(header[1]) == "Finding Label",
             origin,
             ":1: expected the header 'Image Index,Finding Label,Bbox [x,y,w,h],,,' of NIH's BBox_List_2017.csv");
  std::vector<BoxRecord> boxes;
  for (size_t i = 1; i < lines.size(); ++i) {
    const int line = static_cast<int>(i + 1);
    if (trim_blanks(lines[i]).empty()) continue;
    std::vector<std::string> fields = detail::split_csv_fields(lines[i], origin, line);
    // NIH's rows end with empty fields (the header's ",,,").
    while (fields.size() > 6 && trim_blanks(fields.back()).empty()) fields.pop_back();
    CHEX_CHECK(fields.size() == 6, origin, ":", line, ": expected 6 fields (image, label, x, y, w, h), found ",
               fields.size());
    BoxRecord box;
    box.image = std::string(trim_blanks(fields[0]));
    CHEX_CHECK(!box.image.empty(), origin, ":", line, ": empty 'Image Index'");
    std::string_view label = trim_blanks(fields[1]);
    if (label == "Infiltrate") label = "Infiltration";
    const auto index = label_index(label);
    CHEX_CHECK(index.has_value(), origin, ":", line, ": unknown finding '", trim_blanks(fields[1]),
               "' (expected one of the 14 CheXNet labels, or 'Infiltrate')");
    box.label = *index;
    box.x = parse_coordinate(fields[2], "x", origin, line);
    box.y = parse_coordinate(fields[3], "y", origin, line);
    box.w = parse_coordinate(fields[4], "width", origin, line);
    box.h = parse_coordinate(fields[5], "height", origin, line);
    CHEX_CHECK(box.w > 0 && box.h > 0, origin, ":", line, ": the box has no area (w ", box.w, ", h ", box.h, ")");
    box.line = line;
    boxes.push_back(std::move(box));
  }
  CHEX_CHECK(!boxes.empty(), origin, ": the box file has no boxes");
  return boxes;
}

std::vector<BoxRecord> read_box_file(const std::string& path) {
  return parse_box_csv(detail::read_text_file(path, "the box file"), path);
}

}  // namespace chex::data
