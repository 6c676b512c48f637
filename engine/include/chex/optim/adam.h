#pragma once
// Adam (Kingma & Ba), exactly as PyTorch 1.13's torch.optim.Adam without amsgrad: L2 weight decay
// added to the gradient, a step count per parameter, and bias-corrected moments:
//   g  = grad + weight_decay·p
//   m  = β1·m + (1 − β1)·g
//   v  = β2·v + (1 − β2)·g²
//   p -= lr / (1 − β1^t) · m / (sqrt(v) / sqrt(1 − β2^t) + eps)
#include <memory>
#include <string>
#include <vector>

#include "chex/optim/optimizer.h"

namespace chex::optim {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

class Adam : public Optimizer {
 public:
  explicit Adam(std::vector<Tensor> params, const AdamOptions& options = {});
  void stage_step() override;
  void launch_staged_step() const override;
  std::string staged_launch_key() const override;
  const AdamOptions& options() const { return options_; }  // lr: see lr()

 protected:
  std::vector<std::string> state_names() const override { return {"exp_avg", "exp_avg_sq"}; }

 private:
  AdamOptions options_;
  struct Tables;  // the staged update (engine/src/optim/multi_tensor.h)
  std::shared_ptr<Tables> tables_;
};

}  // namespace chex::optim
