#include "chex/metrics/nih_label_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "chex/error.h"
#include "csv_line.h"

namespace chex::metrics {

const std::set<std::string>& chestxray14_labels() {
  static const std::set<std::string> labels = {
      "Atelectasis",   "Cardiomegaly", "Effusion",  "Infiltration", "Mass",     "Nodule",             "Pneumonia",
      "Pneumothorax", "Consolidation", "Edema",     "Emphysema",    "Fibrosis", "Pleural_Thickening", "Hernia"};
  return labels;
}

std::map<std::string, std::set<std::string>> read_nih_labels(const std::string& path) {
  std::ifstream in(path);
  CHEX_CHECK(in, "cannot open the label file '", path, "': ", std::strerror(errno));
  std::string line;
  CHEX_CHECK(std::getline(in, line), path, ": the label file is empty");
  const auto header = detail::split_csv_line(line, /*brackets_group=*/true);
  std::size_t image_column = header.size(), labels_column = header.size();
  for (std::size_t c = 0; c < header.size(); ++c) {
    if (header[c] == "Image Index") image_column = c;
    if (header[c] == "Finding Labels") labels_column = c;
  }
  CHEX_CHECK(image_column < header.size(), path, ":1: no 'Image Index' column in the header");
  CHEX_CHECK(labels_column < header.size(), path, ":1: no 'Finding Labels' column in the header");
  const std::size_t needed = std::max(image_column, labels_column) + 1;

  std::map<std::string, std::set<std::string>> labels;
  for (int number = 2; std::getline(in, line); ++number) {
    if (line.empty() || line == "\r") continue;
    const auto fields = detail::split_csv_line(line);
    CHEX_CHECK(fields.size() >= needed, path, ":", number, ": ", fields.size(), " fields, too few for the columns");
    std::set<std::string> findings;
    if (fields[labels_column] != "No Finding") {
      std::stringstream s(fields[labels_column]);
      for (std::string label; std::getline(s, label, '|');) {
        CHEX_CHECK(chestxray14_labels().count(label) == 1, path, ":", number, ": '", label,
                   "' is not one of the 14 ChestX-ray14 labels nor 'No Finding'");
        findings.insert(label);
      }
    }
    CHEX_CHECK(labels.emplace(fields[image_column], std::move(findings)).second, path, ":", number, ": image '",
               fields[image_column], "' is listed twice");
  }
  return labels;
}

}  // namespace chex::metrics
