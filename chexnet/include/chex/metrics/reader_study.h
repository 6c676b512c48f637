#pragma once
// The CheXNet paper's comparison with radiologists: each reader is scored (F1) against the majority
// vote of the other readers, and the model, binarised at its thresholds, against the same majorities;
// per finding the readers' average, the model's average over the same references, and the
// difference model - readers with a paired bootstrap interval (images resampled once for both).
//
// Majority of the others: with m other readers a finding is present when more than m/2 of them
// marked it. An even m can tie (m/2 marks); a tie counts as absent: a finding needs a strict
// majority of the other readers to enter the reference. (Four readers, the paper's study, leave
// three others: no ties.)
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "chex/metrics/bootstrap.h"
#include "chex/metrics/prediction_file.h"

namespace chex::metrics {

// One reader's marks: image -> the findings marked (empty: "No Finding").
struct ReaderMarks {
  std::string name;  // for tables: the file's stem
  std::map<std::string, std::set<std::string>> findings;
};

// A reader CSV, the label file's convention: a header with "Image Index" and "Finding Labels"
// (NIH names joined by '|', "No Finding" for none); other columns are ignored. Errors name the file
// and line: a missing column, an unknown finding, an image listed twice.
ReaderMarks read_reader_file(const std::string& path);

struct ReaderStudyInputs {
  std::vector<ReaderMarks> readers;  // at least 2
  const Predictions* model = nullptr;
  // Per class of model->classes: the decision threshold (score >= threshold is positive); nullopt:
  // the model is not scored on that class.
  std::vector<std::optional<double>> thresholds;
  std::string threshold_source;  // said in the reports: where the thresholds came from
  // Only these images, where given (e.g. the test split).
  std::optional<std::set<std::string>> images;
  BootstrapOptions bootstrap;
};

struct ReaderStudyClass {
  std::string name;
  std::optional<double> threshold;
  std::vector<std::optional<double>> reader_f1;  // reader i against the majority of the others
  std::vector<std::optional<double>> model_f1;   // the model against reader i's reference
  std::optional<double> readers_mean;            // over the readers with a defined F1
  std::optional<double> model_mean;              // over the references with a defined F1
  std::optional<double> difference;              // model_mean - readers_mean
  std::optional<Interval> readers_ci, model_ci, difference_ci;
};

struct ReaderStudy {
  std::vector<std::string> readers;
  std::size_t images = 0;  // images every reader and the model cover (within `images`)
  std::vector<ReaderStudyClass> classes;
  std::string threshold_source;
  BootstrapOptions bootstrap;
  std::vector<std::string> notices;
};

// Errors: fewer than two readers, no image common to all readers and the predictions.
ReaderStudy run_reader_study(const ReaderStudyInputs& inputs);

std::string reader_study_markdown(const ReaderStudy& study);
// {"readers", "images", "threshold_source", "bootstrap", "classes": {label: {"threshold",
//  "reader_f1": [..], "model_f1": [..], "readers_mean", "model_mean", "difference",
//  "readers_ci", "model_ci", "difference_ci"}}, "notices"}
std::string reader_study_json(const ReaderStudy& study);

}  // namespace chex::metrics
