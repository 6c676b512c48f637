#include <filesystem>

#include "chex/data/labels.h"
#include "chex/error.h"
#include "chex/metrics/reader_study.h"
#include "data/csv_fields.h"
#include "data/findings_field.h"

namespace chex::metrics {

ReaderMarks read_reader_file(const std::string& path) {
  const std::string text = data::detail::read_text_file(path);
  const std::vector<std::string_view> lines = data::detail::split_lines(text);
  CHEX_CHECK(!lines.empty(), path, ": the reader file is empty (expected a header with 'Image Index' and 'Finding Labels')");
  const std::vector<std::string> header = data::detail::split_csv_fields(lines[0], path, 1);
  auto column = [&](const std::string& name) {
    for (std::size_t i = 0; i < header.size(); ++i)
      if (data::detail::trim_blanks(header[i]) == name) return i;
    CHEX_FAIL(path, ":1: no '", name, "' column; a reader file has a header with 'Image Index' and 'Finding Labels' ",
              "(NIH names joined by '|', 'No Finding' for none), as the NIH label file");
  };
  const std::size_t image_column = column("Image Index"), findings_column = column("Finding Labels");
  ReaderMarks marks;
  marks.name = std::filesystem::path(path).stem().string();
  for (std::size_t n = 1; n < lines.size(); ++n) {
    const int line = static_cast<int>(n + 1);
    if (data::detail::trim_blanks(lines[n]).empty()) continue;
    const std::vector<std::string> fields = data::detail::split_csv_fields(lines[n], path, line);
    CHEX_CHECK(fields.size() > std::max(image_column, findings_column), path, ":", line, ": ", fields.size(),
               " fields, too few for the header's 'Image Index' and 'Finding Labels'");
    const std::string image(data::detail::trim_blanks(fields[image_column]));
    CHEX_CHECK(!image.empty(), path, ":", line, ": empty 'Image Index'");
    const data::LabelSet labels = data::detail::parse_findings(fields[findings_column], path, line);
    std::set<std::string> names;
    for (int c = 0; c < data::kNumLabels; ++c)
      if (labels.test(static_cast<std::size_t>(c))) names.emplace(data::kLabelNames[static_cast<std::size_t>(c)]);
    CHEX_CHECK(marks.findings.emplace(image, std::move(names)).second, path, ":", line, ": image '", image,
               "' is listed twice");
  }
  CHEX_CHECK(!marks.findings.empty(), path, ": no images after the header");
  return marks;
}

}  // namespace chex::metrics
