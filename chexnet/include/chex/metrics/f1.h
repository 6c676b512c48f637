#pragma once
// F1 score of one class at a decision threshold (an image is called positive when its score is at
// least the threshold), and the threshold that maximises it.
#include <cstdint>
#include <optional>
#include <span>

namespace chex::metrics {

// Undefined (nullopt) when there is nothing to score: no positives and none predicted.
std::optional<double> f1_at(std::span<const double> scores, std::span<const uint8_t> truth, double threshold);

struct ThresholdChoice {
  double threshold;  // one of the scores: the highest threshold that reaches the best F1
  double f1;
};

// The threshold maximising F1 over every distinct score (meant for validation predictions).
// Undefined when there are no positives (every threshold gives F1 = 0 or nothing).
std::optional<ThresholdChoice> best_f1_threshold(std::span<const double> scores, std::span<const uint8_t> truth);

}  // namespace chex::metrics
