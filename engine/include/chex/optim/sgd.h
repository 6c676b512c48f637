#pragma once
// Stochastic gradient descent with momentum, exactly as PyTorch's torch.optim.SGD:
//   g = grad + weight_decay·p
//   b = g on the first step, then b = momentum·b + (1 − dampening)·g
//   d = g + momentum·b (nesterov) or b (momentum > 0) or g (no momentum)
//   p -= lr·d
#include <memory>
#include <string>
#include <vector>

#include "chex/optim/optimizer.h"

namespace chex::optim {

struct SGDOptions {
  double lr = 0.01;  // PyTorch has no default; give one
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;  // needs momentum > 0 and dampening = 0
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, const SGDOptions& options);
  void stage_step() override;
  void launch_staged_step() const override;
  std::string staged_launch_key() const override;
  const SGDOptions& options() const { return options_; }  // lr: see lr()

 protected:
  std::vector<std::string> state_names() const override;

 private:
  SGDOptions options_;
  struct Tables;  // the staged update (engine/src/optim/multi_tensor.h)
  std::shared_ptr<Tables> tables_;
};

}  // namespace chex::optim
