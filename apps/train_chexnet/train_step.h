#pragma once
// One training step, as train_chexnet runs it and as the host-read test (tests/device) checks it:
// forward, loss, backward, optimizer step, with no host read. The loss comes back as a HostCopy
// (an asynchronous copy on a GPU) that the caller reads when it logs, after the step is queued,
// so that nothing in the step waits for the device.
#include <functional>

#include "chex/nn/module.h"
#include "chex/optim/optimizer.h"
#include "chex/tensor.h"

namespace chex::train {

using LossFunction = std::function<Tensor(const Tensor& logits, const Tensor& targets)>;

// images and labels already on the model's device. Data-parallel training replaces `forward`
// (default: model(x)) and `backward` (default: loss.backward()) with DataParallel's, and gives
// `before_step`, which runs between the backward and the optimizer step with the loss's host copy
// (the ranks agree on the step and finish averaging the gradients).
using Forward = std::function<Tensor(const Tensor& images)>;
using Backward = std::function<void(const Tensor& loss)>;
using BeforeStep = std::function<void(HostCopy& loss)>;
struct DistributedStep {
  Forward forward;
  Backward backward;
  BeforeStep before_step;
};
inline HostCopy train_step(nn::Module& model, const LossFunction& loss_function, optim::Optimizer& optimizer,
                           const Tensor& images, const Tensor& labels, const DistributedStep& distributed = {}) {
  const Tensor logits = distributed.forward ? distributed.forward(images) : model(images);
  const Tensor loss = loss_function(logits, labels);
  HostCopy value = loss.detach().to_host_async();
  optimizer.zero_grad();
  if (distributed.backward) distributed.backward(loss);
  else loss.backward();
  if (distributed.before_step) distributed.before_step(value);
  optimizer.step();
  return value;
}

}  // namespace chex::train
