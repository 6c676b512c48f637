#include "loss.h"

#include "chex/data/class_weights.h"
#include "chex/data/labels.h"
#include "chex/ops.h"

namespace chex::train {

Loss::Loss(bool weighted, const std::vector<data::Sample>& training, Device device) {
  if (!weighted) return;
  const data::ClassWeights weights = data::compute_class_weights(training);
  positive_ = weights.positive_tensor().to(device);
  negative_ = weights.negative_tensor().to(device);
}

Tensor Loss::operator()(const Tensor& logits, const Tensor& targets) const {
  // bce_with_logits averages over N * 14 elements; the paper sums the labels.
  return ops::scale(ops::bce_with_logits(logits, targets, positive_, negative_), static_cast<float>(data::kNumLabels));
}

}  // namespace chex::train
