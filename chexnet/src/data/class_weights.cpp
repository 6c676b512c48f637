#include "chex/data/class_weights.h"

#include "chex/error.h"

namespace chex::data {

ClassWeights compute_class_weights(const std::vector<Sample>& training) {
  CHEX_CHECK(!training.empty(), "class weights need a non-empty training split");
  std::array<int64_t, kNumLabels> positives{};
  for (const Sample& s : training)
    for (int i = 0; i < kNumLabels; ++i) positives[i] += s.labels.test(static_cast<size_t>(i));
  const double total = static_cast<double>(training.size());
  ClassWeights weights;
  for (int i = 0; i < kNumLabels; ++i) {
    const double p = static_cast<double>(positives[i]);
    weights.positive[i] = static_cast<float>((total - p) / total);
    weights.negative[i] = static_cast<float>(p / total);
  }
  return weights;
}

Tensor ClassWeights::positive_tensor() const {
  return Tensor::from_vector(std::vector<float>(positive.begin(), positive.end()), {kNumLabels});
}
Tensor ClassWeights::negative_tensor() const {
  return Tensor::from_vector(std::vector<float>(negative.begin(), negative.end()), {kNumLabels});
}

}  // namespace chex::data
