#pragma once
// The NIH label file (Data_Entry_2017.csv / Data_Entry_2017_v2020.csv) as evaluation reads it:
// image name -> findings by name. The parsing is data::read_label_file's, the one parser of the
// file, so training and evaluation accept and reject the same files with the same messages.
#include <map>
#include <set>
#include <string>

namespace chex::metrics {

// data::read_label_file, each record's findings as their names. "No Finding" is the empty set.
// Errors name the file and line: a missing column, a row whose field count differs from the
// header's, a label that is none of the 14 nor "No Finding", a bad patient id, a repeated image.
std::map<std::string, std::set<std::string>> read_nih_labels(const std::string& path);

// The 14 ChestX-ray14 labels (data::kLabelNames) as a set.
const std::set<std::string>& chestxray14_labels();

}  // namespace chex::metrics
