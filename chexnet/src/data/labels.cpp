#include "chex/data/labels.h"

namespace chex::data {

std::optional<int> label_index(std::string_view name) {
  for (int i = 0; i < kNumLabels; ++i)
    if (kLabelNames[i] == name) return i;
  return std::nullopt;
}

}  // namespace chex::data
