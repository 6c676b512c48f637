#include "chex/metrics/curves.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "chex/error.h"

namespace chex::metrics {
namespace {

// Walks the scores from the highest down, one distinct score at a time, calling visit(threshold,
// true positives, false positives) after each group of ties.
template <typename Visit>
void sweep(std::span<const double> scores, std::span<const uint8_t> truth, Visit visit) {
  CHEX_CHECK(scores.size() == truth.size(), "curve: ", scores.size(), " scores but ", truth.size(), " labels");
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] > scores[b]; });
  std::size_t tp = 0, fp = 0;
  for (std::size_t k = 0; k < order.size();) {
    const double s = scores[order[k]];
    for (; k < order.size() && scores[order[k]] == s; ++k) (truth[order[k]] ? tp : fp) += 1;
    visit(s, tp, fp);
  }
}

}  // namespace

std::vector<CurvePoint> roc_curve(std::span<const double> scores, std::span<const uint8_t> truth) {
  const auto positives = static_cast<std::size_t>(std::count(truth.begin(), truth.end(), uint8_t{1}));
  const std::size_t negatives = truth.size() - positives;
  if (positives == 0 || negatives == 0) return {};
  std::vector<CurvePoint> points{{0, 0, std::numeric_limits<double>::infinity()}};
  sweep(scores, truth, [&](double s, std::size_t tp, std::size_t fp) {
    points.push_back({static_cast<double>(fp) / static_cast<double>(negatives),
                      static_cast<double>(tp) / static_cast<double>(positives), s});
  });
  return points;
}

std::vector<CurvePoint> precision_recall_curve(std::span<const double> scores, std::span<const uint8_t> truth) {
  const auto positives = static_cast<std::size_t>(std::count(truth.begin(), truth.end(), uint8_t{1}));
  if (positives == 0) return {};
  std::vector<CurvePoint> points;
  sweep(scores, truth, [&](double s, std::size_t tp, std::size_t fp) {
    points.push_back({static_cast<double>(tp) / static_cast<double>(positives),
                      static_cast<double>(tp) / static_cast<double>(tp + fp), s});
  });
  return points;
}

std::vector<ReliabilityBin> reliability(std::span<const double> scores, std::span<const uint8_t> truth, int bins) {
  CHEX_CHECK(scores.size() == truth.size() && bins > 0, "reliability: bad inputs");
  std::vector<double> score_sum(static_cast<std::size_t>(bins)), positive(static_cast<std::size_t>(bins));
  std::vector<std::size_t> count(static_cast<std::size_t>(bins));
  for (std::size_t i = 0; i < scores.size(); ++i) {
    const int b = std::clamp(static_cast<int>(scores[i] * bins), 0, bins - 1);
    score_sum[static_cast<std::size_t>(b)] += scores[i];
    positive[static_cast<std::size_t>(b)] += truth[i];
    ++count[static_cast<std::size_t>(b)];
  }
  std::vector<ReliabilityBin> out;
  for (std::size_t b = 0; b < count.size(); ++b)
    if (count[b])
      out.push_back({score_sum[b] / static_cast<double>(count[b]), positive[b] / static_cast<double>(count[b]), count[b]});
  return out;
}

}  // namespace chex::metrics
