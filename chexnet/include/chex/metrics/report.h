#pragma once
// An evaluation as a Markdown table (for people) and as JSON (for programs).
#include <map>
#include <string>

#include "chex/metrics/evaluation.h"
#include "chex/metrics/reader_study.h"

namespace chex::metrics {

std::string to_markdown(const Evaluation& evaluation);

// {"images", "mean_auroc", "mean_auroc_ci", "auroc": {label: value|null}, "auroc_ci": {label: [lo, hi]|null},
//  "f1", "f1_ci", "thresholds", "positives", "bootstrap": {"resamples", "seed"}, "notices"}, and
// "reader_study" (reader_study_json) when a study is given.
std::string to_json(const Evaluation& evaluation, const ReaderStudy* study = nullptr);
// Written atomically: a temporary beside `path`, then a rename.
void write_json(const Evaluation& evaluation, const std::string& path, const ReaderStudy* study = nullptr);

// Per-class thresholds from a JSON file: either {label: number} or an evaluation's JSON (its
// "thresholds" object). Labels absent or null get none.
std::map<std::string, double> read_thresholds(const std::string& path);

}  // namespace chex::metrics
