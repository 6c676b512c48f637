#pragma once
// A minimal reader of the NIH label file (Data_Entry_2017.csv / Data_Entry_2017_v2020.csv): image
// name -> findings. Only what evaluation needs; kept apart so that the data loader's full parser
// can replace it.
#include <map>
#include <set>
#include <string>

namespace chex::metrics {

// Reads the "Image Index" and "Finding Labels" columns (found by name in the header, whose
// bracketed names hold commas). Labels are split on '|'; "No Finding" is the empty set. Errors name
// the file and line: a missing column, a short row, a label that is none of the 14 nor "No Finding".
std::map<std::string, std::set<std::string>> read_nih_labels(const std::string& path);

// The 14 ChestX-ray14 labels in CheXNet's order.
const std::set<std::string>& chestxray14_labels();

}  // namespace chex::metrics
