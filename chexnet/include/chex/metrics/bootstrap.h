#pragma once
// Bootstrap confidence intervals (percentile method) for per-class AUROC, mean AUROC and F1.
//
// Each resample draws the evaluated images with replacement, jointly for all classes (an image keeps
// its 14 labels and scores together, so the mean AUROC's interval sees their correlation). Resample b
// draws from its own generator, seeded from (seed, b): the result is the same for a seed whatever
// the thread count.
#include <cstdint>
#include <optional>
#include <vector>

#include "chex/metrics/score_table.h"

namespace chex::metrics {

struct BootstrapOptions {
  int resamples = 10000;
  uint64_t seed = 0;
  double confidence = 0.95;
};

struct Interval {
  double lower = 0;
  double upper = 0;
  int resamples = 0;  // resamples in which the statistic was defined (the others are left out)
};

struct BootstrapResult {
  std::vector<std::optional<Interval>> auroc;  // per class; nullopt where never defined
  // Mean over the classes whose AUROC is defined on the full set; a resample counts only where all
  // of them are defined in it.
  std::optional<Interval> mean_auroc;
  std::vector<std::optional<Interval>> f1;  // per class, at the given thresholds (nullopt: no threshold)
};

// thresholds: one per class (nullopt: no F1 for that class), or empty for no F1 at all.
BootstrapResult bootstrap(const ScoreTable& table, const std::vector<std::optional<double>>& thresholds,
                          const BootstrapOptions& options = {});

// Resample b of a seed: how many times each of weights.size() images is drawn (n draws with
// replacement from the resample's own generator). Fills and returns `weights`.
uint64_t resample_seed(uint64_t seed, uint64_t resample);
std::vector<uint32_t>& draw_resample(uint64_t seed, uint64_t resample, std::vector<uint32_t>& weights);

// The percentile interval of a statistic's resampled values (NaN: undefined in that resample, left
// out); nullopt when it is never defined.
std::optional<Interval> percentile_interval(std::vector<double> values, double confidence);

// The q-quantile (0..1) of values by linear interpolation between order statistics (numpy's
// default). Sorts `values`.
double quantile(std::vector<double>& values, double q);

}  // namespace chex::metrics
