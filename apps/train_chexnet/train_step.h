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

// images and labels already on the model's device. `forward` runs the model (default: model(x));
// `before_step`, when given, runs between the backward and the optimizer step with the loss's
// host copy (data-parallel training: the ranks agree on the step and average the gradients).
using Forward = std::function<Tensor(const Tensor& images)>;
using BeforeStep = std::function<void(HostCopy& loss)>;
inline HostCopy train_step(nn::Module& model, const LossFunction& loss_function, optim::Optimizer& optimizer,
                           const Tensor& images, const Tensor& labels, const Forward& forward = {},
                           const BeforeStep& before_step = {}) {
  const Tensor logits = forward ? forward(images) : model(images);
  const Tensor loss = loss_function(logits, labels);
  HostCopy value = loss.detach().to_host_async();
  optimizer.zero_grad();
  loss.backward();
  if (before_step) before_step(value);
  optimizer.step();
  return value;
}

}  // namespace chex::train
