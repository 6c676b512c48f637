#pragma once
// Reading the predictions CSV that `chex predict` writes:
//   Image Index,prob_Atelectasis,...,prob_Hernia
//   00000001_000.png,0.0312,...
#include <string>
#include <vector>

namespace chex::metrics {

struct Predictions {
  std::vector<std::string> classes;  // the names after "prob_", in column order
  std::vector<std::string> images;
  std::vector<std::vector<double>> scores;  // [image][class]
};

// Errors (chex::Error) name the file and line: a missing "Image Index" or prob_ column, a row with
// the wrong number of fields, a score that is not a finite number, an image listed twice.
Predictions read_predictions(const std::string& path);

}  // namespace chex::metrics
