#include "chex/metrics/nih_label_file.h"

#include <cstddef>

#include "chex/data/label_file.h"
#include "chex/data/labels.h"

namespace chex::metrics {

const std::set<std::string>& chestxray14_labels() {
  static const std::set<std::string> labels(data::kLabelNames.begin(), data::kLabelNames.end());
  return labels;
}

std::map<std::string, std::set<std::string>> read_nih_labels(const std::string& path) {
  const data::LabelTable table = data::read_label_file(path);
  std::map<std::string, std::set<std::string>> labels;
  for (const data::LabelRecord& record : table.records) {
    std::set<std::string> findings;
    for (std::size_t i = 0; i < data::kLabelNames.size(); ++i)
      if (record.labels.test(i)) findings.emplace(data::kLabelNames[i]);
    labels.emplace(record.image, std::move(findings));
  }
  return labels;
}

}  // namespace chex::metrics
