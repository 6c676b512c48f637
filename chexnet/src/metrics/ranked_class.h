#pragma once
// One class's images sorted by score once, so that AUROC can be recomputed for any image weighting
// (a bootstrap resample is a weighting: how many times each image was drawn) in O(n) rather than
// re-sorting each time.
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace chex::metrics::detail {

class RankedClass {
 public:
  RankedClass(std::span<const double> scores, std::span<const uint8_t> truth);

  // Mann-Whitney AUROC with image i counted weights[i] times (all once when weights is empty);
  // nullopt when the weighted set has no positives or no negatives. Exact: the statistic is
  // accumulated in integers and divided once.
  std::optional<double> auroc(std::span<const uint32_t> weights = {}) const;

 private:
  std::vector<uint32_t> order_;       // image indices by ascending score
  std::vector<uint32_t> group_end_;   // end (in order_) of each run of equal scores
  std::vector<uint8_t> positive_;     // truth, by image index
};

}  // namespace chex::metrics::detail
