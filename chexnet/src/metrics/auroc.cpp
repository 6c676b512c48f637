#include "chex/metrics/auroc.h"

#include "ranked_class.h"

namespace chex::metrics {

std::optional<double> auroc(std::span<const double> scores, std::span<const uint8_t> truth) {
  return detail::RankedClass(scores, truth).auroc();
}

}  // namespace chex::metrics
