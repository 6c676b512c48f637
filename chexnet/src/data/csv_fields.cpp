#include "csv_fields.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "chex/error.h"

namespace chex::data::detail {

std::vector<std::string> split_csv_fields(std::string_view line, const std::string& origin, int line_number) {
  std::vector<std::string> fields;
  std::string field;
  size_t i = 0;
  while (true) {
    field.clear();
    if (i < line.size() && line[i] == '"') {
      ++i;
      while (true) {
        CHEX_CHECK(i < line.size(), origin, ":", line_number, ": unterminated quoted field");
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field += line[i++];
      }
      CHEX_CHECK(i == line.size() || line[i] == ',', origin, ":", line_number,
                 ": unexpected text after a closing quote in field ", fields.size() + 1);
    } else {
      while (i < line.size() && line[i] != ',') field += line[i++];
    }
    fields.push_back(field);
    if (i == line.size()) break;
    ++i;  // the comma; a trailing comma yields a final empty field
  }
  return fields;
}

std::vector<std::string_view> split_lines(std::string_view text) {
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    if (line.ends_with('\r')) line.remove_suffix(1);
    lines.push_back(line);
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return lines;
}

std::string read_text_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  CHEX_CHECK(in, "cannot open ", what, " '", path, "': ", std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  CHEX_CHECK(!in.bad(), "cannot read ", what, " '", path, "': ", std::strerror(errno));
  return std::move(text).str();
}

std::string_view trim_blanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace chex::data::detail
