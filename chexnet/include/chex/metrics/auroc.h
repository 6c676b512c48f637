#pragma once
// Area under the ROC curve, exactly: the Mann-Whitney statistic, the probability that a random
// positive scores above a random negative, ties counted half. O(n log n).
#include <cstdint>
#include <optional>
#include <span>

namespace chex::metrics {

// Undefined (nullopt) when there are no positives or no negatives: reporting 0.5 would hide that
// the label cannot be judged on this set. Scores must be finite; truth is 0 or 1.
std::optional<double> auroc(std::span<const double> scores, std::span<const uint8_t> truth);

}  // namespace chex::metrics
