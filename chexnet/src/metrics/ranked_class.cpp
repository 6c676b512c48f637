#include "ranked_class.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "chex/error.h"

namespace chex::metrics::detail {

RankedClass::RankedClass(std::span<const double> scores, std::span<const uint8_t> truth)
    : order_(scores.size()), positive_(truth.begin(), truth.end()) {
  CHEX_CHECK(scores.size() == truth.size(), "AUROC: ", scores.size(), " scores but ", truth.size(), " labels");
  CHEX_CHECK(scores.size() < (std::size_t{1} << 32), "AUROC: too many images (", scores.size(), ")");
  for (std::size_t i = 0; i < scores.size(); ++i) {
    CHEX_CHECK(std::isfinite(scores[i]), "AUROC: score ", i, " is not finite (", scores[i], ")");
    CHEX_CHECK(truth[i] <= 1, "AUROC: label ", i, " is ", int{truth[i]}, ", not 0 or 1");
  }
  std::iota(order_.begin(), order_.end(), 0u);
  std::sort(order_.begin(), order_.end(), [&](uint32_t a, uint32_t b) { return scores[a] < scores[b]; });
  for (std::size_t k = 1; k <= order_.size(); ++k)
    if (k == order_.size() || scores[order_[k]] != scores[order_[k - 1]]) group_end_.push_back(static_cast<uint32_t>(k));
}

std::optional<double> RankedClass::auroc(std::span<const uint32_t> weights) const {
  CHEX_CHECK(weights.empty() || weights.size() == order_.size(), "AUROC: ", weights.size(), " weights for ",
             order_.size(), " images");
  // 2U = sum over tie groups of (positives in group) * (2 * negatives below + negatives in group):
  // each positive beats the negatives below it and ties half of those beside it.
  uint64_t twice_u = 0, negatives_below = 0, positives = 0;
  std::size_t begin = 0;
  for (const uint32_t end : group_end_) {
    uint64_t group_pos = 0, group_neg = 0;
    for (std::size_t k = begin; k < end; ++k) {
      const uint32_t i = order_[k];
      const uint64_t w = weights.empty() ? 1 : weights[i];
      (positive_[i] ? group_pos : group_neg) += w;
    }
    twice_u += group_pos * (2 * negatives_below + group_neg);
    negatives_below += group_neg;
    positives += group_pos;
    begin = end;
  }
  const uint64_t negatives = negatives_below;
  if (positives == 0 || negatives == 0) return std::nullopt;
  return static_cast<double>(twice_u) / (2.0 * static_cast<double>(positives) * static_cast<double>(negatives));
}

}  // namespace chex::metrics::detail
