#pragma once
// The curves behind the AUROC and F1 numbers, for plotting: ROC and precision-recall points at
// every distinct score, and a reliability (calibration) table.
#include <cstdint>
#include <span>
#include <vector>

namespace chex::metrics {

struct CurvePoint {
  double x = 0, y = 0;
  double threshold = 0;  // images scoring at least this are called positive (+inf for the first ROC point)
};

// (false positive rate, true positive rate) from (0, 0) to (1, 1), one point per distinct score
// from the highest down (ties enter together, so the trapezoids' area is the Mann-Whitney AUROC).
// Empty when there are no positives or no negatives.
std::vector<CurvePoint> roc_curve(std::span<const double> scores, std::span<const uint8_t> truth);

// (recall, precision), one point per distinct score from the highest down. Empty when there are no
// positives.
std::vector<CurvePoint> precision_recall_curve(std::span<const double> scores, std::span<const uint8_t> truth);

// Reliability: the scores (probabilities in [0, 1]) cut into `bins` equal-width bins; per bin the
// mean score, the fraction positive and the count (bins without scores are left out).
struct ReliabilityBin {
  double mean_score = 0, fraction_positive = 0;
  std::size_t count = 0;
};
std::vector<ReliabilityBin> reliability(std::span<const double> scores, std::span<const uint8_t> truth, int bins = 10);

}  // namespace chex::metrics
