#pragma once
// The NIH label file: Data_Entry_2017_v2020.csv, or the original Data_Entry_2017.csv whose rows end
// with one extra empty field. Columns are found by name; the header's bracketed names
// ("OriginalImage[Width,Height]") contain commas and so span several fields. Every error names the
// file and the line.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chex/data/labels.h"

namespace chex::data {

struct LabelRecord {
  std::string image;    // "00000001_000.png"
  int64_t patient = 0;  // the "Patient ID" column, a positive integer
  LabelSet labels;      // empty for "No Finding"
  int line = 0;         // 1-based line in the label file
};

struct LabelTable {
  std::string origin;  // the file it came from (for messages)
  std::vector<LabelRecord> records;
};

// Parses the text of a label file; `origin` names it in errors ("Data_Entry_2017.csv:12: ...").
LabelTable parse_label_csv(std::string_view text, const std::string& origin);
// Reads and parses a label file.
LabelTable read_label_file(const std::string& path);

}  // namespace chex::data
