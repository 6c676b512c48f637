#include "chex/data/label_file.h"

#include <charconv>
#include <optional>
#include <unordered_map>

#include "chex/error.h"
#include "csv_fields.h"
#include "findings_field.h"

namespace chex::data {
namespace {

// A header name and the fields it spans: "OriginalImage[Width,Height]" is one name over two fields.
struct Column {
  std::string name;
  size_t first_field = 0;
};

struct Header {
  std::vector<Column> columns;
  size_t fields = 0;  // fields a row has (not counting the 2017 file's trailing empty one)
};

Header parse_header(std::string_view line, const std::string& origin) {
  std::vector<std::string> fields = detail::split_csv_fields(line, origin, 1);
  // The 2017 file's header, like its rows, may end with an empty field.
  if (fields.size() > 1 && fields.back().empty()) fields.pop_back();
  Header header;
  header.fields = fields.size();
  for (size_t i = 0; i < fields.size(); ++i) {
    Column column{fields[i], i};
    // A '[' without its ']' continues into the following fields until one closes it.
    if (column.name.find('[') != std::string::npos && column.name.find(']') == std::string::npos) {
      while (i + 1 < fields.size() && column.name.find(']') == std::string::npos) column.name += "," + fields[++i];
    }
    header.columns.push_back(std::move(column));
  }
  return header;
}

size_t find_column(const Header& header, std::string_view name, const std::string& origin) {
  for (const Column& column : header.columns)
    if (column.name == name) return column.first_field;
  std::string found;
  for (const Column& column : header.columns) found += (found.empty() ? "'" : ", '") + column.name + "'";
  CHEX_FAIL(origin, ":1: no '", name, "' column in the header (it has ", found,
            "); is this an NIH Data_Entry_2017 label file?");
}

using detail::trim_blanks;

}  // namespace

LabelSet detail::parse_findings(std::string_view text, const std::string& origin, int line) {
  LabelSet labels;
  bool no_finding = false;
  int count = 0;
  size_t start = 0;
  while (true) {
    const size_t bar = text.find('|', start);
    const std::string_view name =
        trim_blanks(text.substr(start, bar == std::string_view::npos ? text.npos : bar - start));
    ++count;
    if (name == kNoFinding) {
      no_finding = true;
    } else if (const std::optional<int> index = label_index(name)) {
      labels.set(static_cast<size_t>(*index));
    } else {
      CHEX_FAIL(origin, ":", line, ": '", name, "' is not one of the 14 ChestX-ray14 labels (spelled as in the ",
                "label file, e.g. 'Pleural_Thickening') nor '", kNoFinding, "'");
    }
    if (bar == std::string_view::npos) break;
    start = bar + 1;
  }
  CHEX_CHECK(!no_finding || count == 1, origin, ":", line, ": '", kNoFinding,
             "' cannot be combined with other findings ('", text, "')");
  return labels;
}

namespace {

int64_t parse_patient(std::string_view text, const std::string& origin, int line) {
  text = trim_blanks(text);
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  CHEX_CHECK(!text.empty() && ec == std::errc() && end == text.data() + text.size() && value > 0, origin, ":", line,
             ": bad patient id '", text, "' (expected a positive integer)");
  return value;
}

}  // namespace

LabelTable parse_label_csv(std::string_view text, const std::string& origin) {
  const std::vector<std::string_view> lines = detail::split_lines(text);
  CHEX_CHECK(!lines.empty() && !lines[0].empty(), origin, ": the label file is empty (no header line)");
  const Header header = parse_header(lines[0], origin);
  const size_t image_field = find_column(header, "Image Index", origin);
  const size_t findings_field = find_column(header, "Finding Labels", origin);
  const size_t patient_field = find_column(header, "Patient ID", origin);

  LabelTable table{origin, {}};
  table.records.reserve(lines.size());
  std::unordered_map<std::string, int> seen;  // image -> line, to name both lines of a duplicate
  seen.reserve(lines.size());
  for (size_t i = 1; i < lines.size(); ++i) {
    const int line = static_cast<int>(i + 1);
    if (trim_blanks(lines[i]).empty()) continue;
    std::vector<std::string> fields = detail::split_csv_fields(lines[i], origin, line);
    // Data_Entry_2017.csv ends every row with one more, empty, field.
    if (fields.size() == header.fields + 1 && fields.back().empty()) fields.pop_back();
    CHEX_CHECK(fields.size() == header.fields, origin, ":", line, ": expected ", header.fields,
               " fields as in the header, found ", fields.size());
    LabelRecord record;
    record.image = std::string(trim_blanks(fields[image_field]));
    CHEX_CHECK(!record.image.empty(), origin, ":", line, ": empty 'Image Index'");
    record.labels = detail::parse_findings(fields[findings_field], origin, line);
    record.patient = parse_patient(fields[patient_field], origin, line);
    record.line = line;
    const auto [it, inserted] = seen.emplace(record.image, line);
    CHEX_CHECK(inserted, origin, ":", line, ": image '", record.image, "' is listed twice (first on line ", it->second,
               ")");
    table.records.push_back(std::move(record));
  }
  return table;
}

LabelTable read_label_file(const std::string& path) {
  return parse_label_csv(detail::read_text_file(path, "the label file"), path);
}

}  // namespace chex::data
