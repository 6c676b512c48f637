#include "csv_line.h"

namespace chex::metrics::detail {

std::vector<std::string> split_csv_line(std::string line, bool brackets_group) {
  if (!line.empty() && line.back() == '\r') line.pop_back();
  std::vector<std::string> fields(1);
  int depth = 0;
  for (const char c : line) {
    if (brackets_group && c == '[') ++depth;
    if (brackets_group && c == ']' && depth > 0) --depth;
    if (c == ',' && depth == 0) fields.emplace_back();
    else fields.back() += c;
  }
  return fields;
}

}  // namespace chex::metrics::detail
