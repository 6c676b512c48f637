#include "chex/metrics/evaluation_inputs.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "chex/error.h"
#include "chex/metrics/nih_label_file.h"

namespace chex::metrics {

ScoreTable make_score_table(const EvaluationInputs& in) {
  const Predictions& p = in.predictions;
  for (std::size_t c = 0; c < p.classes.size(); ++c)
    CHEX_CHECK(chestxray14_labels().count(p.classes[c]) == 1, in.predictions_path, ":1: column prob_", p.classes[c],
               " is not one of the 14 ChestX-ray14 labels");
  std::vector<std::size_t> rows;
  for (std::size_t i = 0; i < p.images.size(); ++i) {
    if (in.images && in.images->count(p.images[i]) == 0) continue;
    CHEX_CHECK(in.labels.count(p.images[i]) == 1, in.predictions_path, ":", i + 2, ": image '", p.images[i],
               "' has predictions but no row in the label file '", in.labels_path, "'");
    rows.push_back(i);
  }
  CHEX_CHECK(!rows.empty(), "no image to evaluate: none of the ", p.images.size(), " images in '", in.predictions_path,
             "'", in.images ? " is listed in '" + in.images_path + "'" : std::string(" (the file has no rows)"));
  ScoreTable table(p.classes, rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const auto& findings = in.labels.at(p.images[rows[r]]);
    for (std::size_t c = 0; c < p.classes.size(); ++c)
      table.set(r, c, p.scores[rows[r]][c], findings.count(p.classes[c]) == 1);
  }
  return table;
}

std::set<std::string> read_image_list(const std::string& path) {
  std::ifstream in(path);
  CHEX_CHECK(in, "cannot open the image list '", path, "': ", std::strerror(errno));
  std::set<std::string> images;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) images.insert(line);
  }
  return images;
}

}  // namespace chex::metrics
