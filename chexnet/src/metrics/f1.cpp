#include "chex/metrics/f1.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "chex/error.h"

namespace chex::metrics {
namespace {
void check_inputs(std::span<const double> scores, std::span<const uint8_t> truth) {
  CHEX_CHECK(scores.size() == truth.size(), "F1: ", scores.size(), " scores but ", truth.size(), " labels");
  for (std::size_t i = 0; i < scores.size(); ++i)
    CHEX_CHECK(std::isfinite(scores[i]), "F1: score ", i, " is not finite (", scores[i], ")");
}
}  // namespace

std::optional<double> f1_at(std::span<const double> scores, std::span<const uint8_t> truth, double threshold) {
  check_inputs(scores, truth);
  std::size_t tp = 0, fp = 0, fn = 0;
  for (std::size_t i = 0; i < scores.size(); ++i) {
    const bool predicted = scores[i] >= threshold;
    tp += predicted && truth[i];
    fp += predicted && !truth[i];
    fn += !predicted && truth[i];
  }
  if (tp + fp + fn == 0) return std::nullopt;
  return 2.0 * static_cast<double>(tp) / static_cast<double>(2 * tp + fp + fn);
}

std::optional<ThresholdChoice> best_f1_threshold(std::span<const double> scores, std::span<const uint8_t> truth) {
  check_inputs(scores, truth);
  const std::size_t positives = static_cast<std::size_t>(std::count(truth.begin(), truth.end(), uint8_t{1}));
  if (positives == 0) return std::nullopt;
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] > scores[b]; });
  // Lower the threshold one distinct score at a time; ties enter together.
  std::optional<ThresholdChoice> best;
  std::size_t tp = 0, fp = 0;
  for (std::size_t k = 0; k < order.size();) {
    const double s = scores[order[k]];
    for (; k < order.size() && scores[order[k]] == s; ++k) (truth[order[k]] ? tp : fp) += 1;
    const double f1 = 2.0 * static_cast<double>(tp) / static_cast<double>(tp + fp + positives);
    if (!best || f1 > best->f1) best = ThresholdChoice{s, f1};
  }
  return best;
}

}  // namespace chex::metrics
