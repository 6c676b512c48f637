#pragma once
// CheXNet's weighted binary cross-entropy: per class, positives weigh w+ = |N| / (|P| + |N|) and
// negatives w- = |P| / (|P| + |N|), counted on the training split, so a rare finding's few positives
// are not drowned by its many negatives.
#include <array>
#include <vector>

#include "chex/data/nih_dataset.h"
#include "chex/tensor.h"

namespace chex::data {

struct ClassWeights {
  std::array<float, kNumLabels> positive{};  // w+ per class
  std::array<float, kNumLabels> negative{};  // w- per class
  // As [14] tensors for ops::bce_with_logits(logits, targets, pos_weight, neg_weight).
  Tensor positive_tensor() const;
  Tensor negative_tensor() const;
};

// Throws chex::Error on an empty split.
ClassWeights compute_class_weights(const std::vector<Sample>& training);

}  // namespace chex::data
