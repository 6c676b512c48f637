#pragma once
// The evaluation report of a set of predictions: per class AUROC and F1 with bootstrap confidence
// intervals, the mean AUROC, and notices about what could not be judged. What `chex eval` prints.
#include <optional>
#include <string>
#include <vector>

#include "chex/metrics/bootstrap.h"
#include "chex/metrics/score_table.h"

namespace chex::metrics {

struct EvaluationOptions {
  BootstrapOptions bootstrap;  // resamples = 0: no confidence intervals
  // Decision thresholds per class for F1. Empty: choose them on the evaluated predictions themselves
  // (F1 then flatters the model; choose them on validation predictions instead where possible).
  std::vector<std::optional<double>> thresholds;
};

struct ClassEvaluation {
  std::string name;
  std::size_t positives = 0;
  std::size_t negatives = 0;
  std::optional<double> auroc;
  std::optional<Interval> auroc_ci;
  std::optional<double> threshold;
  std::optional<double> f1;
  std::optional<Interval> f1_ci;
};

struct Evaluation {
  std::size_t images = 0;
  std::vector<ClassEvaluation> classes;
  std::optional<double> mean_auroc;  // over the classes with a defined AUROC
  std::optional<Interval> mean_auroc_ci;
  bool thresholds_from_evaluated_set = false;
  BootstrapOptions bootstrap;
  std::vector<std::string> notices;  // e.g. labels left out of the mean, and why
};

Evaluation evaluate(const ScoreTable& table, const EvaluationOptions& options = {});

}  // namespace chex::metrics
