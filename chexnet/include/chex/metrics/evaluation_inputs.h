#pragma once
// Joining a predictions file with the label file into the table the metrics read.
#include <map>
#include <optional>
#include <set>
#include <string>

#include "chex/metrics/prediction_file.h"
#include "chex/metrics/score_table.h"

namespace chex::metrics {

struct EvaluationInputs {
  std::string predictions_path;
  Predictions predictions;
  std::string labels_path;
  std::map<std::string, std::set<std::string>> labels;  // image -> findings
  // Only these images (say test_list.txt), where given.
  std::optional<std::set<std::string>> images;
  std::string images_path;
};

// The images present in the predictions (and in the list, where given), in the predictions' order.
// Errors name the files and lines: a prob_ column that is not a ChestX-ray14 label, an image with
// predictions but no labels, no image left to evaluate.
ScoreTable make_score_table(const EvaluationInputs& inputs);

// An image list file: one name per line (train_val_list.txt, test_list.txt).
std::set<std::string> read_image_list(const std::string& path);

}  // namespace chex::metrics
