#pragma once
// CheXNet's loss: binary cross-entropy summed over the 14 labels and averaged over the batch,
// weighted per class as the paper (w+ = |N|/(|P|+|N|), w- = |P|/(|P|+|N|) on the training split)
// or plain.
#include <vector>

#include "chex/data/nih_dataset.h"
#include "chex/device.h"
#include "chex/tensor.h"

namespace chex::train {

class Loss {
 public:
  // weighted: class weights from `training`; otherwise every term weighs 1.
  Loss(bool weighted, const std::vector<data::Sample>& training, Device device);
  Tensor operator()(const Tensor& logits, const Tensor& targets) const;

 private:
  Tensor positive_, negative_;  // [14] or undefined
};

}  // namespace chex::train
