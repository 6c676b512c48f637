#include "chex/optim/adam.h"

#include <map>
#include <vector>

#include "chex/autograd.h"
#include "chex/error.h"
#include "cuda/ops_cuda.h"
#include "kernels/optimizer.h"

namespace chex::optim {

Adam::Adam(std::vector<Tensor> params, const AdamOptions& options)
    : Optimizer("Adam", std::move(params), options.lr), options_(options) {
  CHEX_CHECK(options.beta1 >= 0.0 && options.beta1 < 1.0, "Adam: beta1 must lie in [0, 1), got ", options.beta1);
  CHEX_CHECK(options.beta2 >= 0.0 && options.beta2 < 1.0, "Adam: beta2 must lie in [0, 1), got ", options.beta2);
  CHEX_CHECK(options.eps >= 0.0, "Adam: eps must not be negative, got ", options.eps);
  CHEX_CHECK(options.weight_decay >= 0.0, "Adam: weight_decay must not be negative, got ", options.weight_decay);
}

void Adam::step() {
  NoGradGuard no_grad;
  const kernels::AdamHyper hyper =
      kernels::adam_hyper(options_.beta1, options_.beta2, options_.eps, options_.weight_decay);
  // CPU parameters are updated one by one; those on a GPU are gathered per device and updated in
  // one launch there. The gradients stay referenced until their launch is enqueued.
  std::map<int, std::vector<kernels::AdamTensor>> on_gpu;
  std::vector<Tensor> gpu_grads;
  for (size_t index = 0; index < parameters().size(); ++index) {
    const Tensor& param = parameters()[index];
    if (!param.grad().defined()) continue;
    const Tensor grad = checked_gradient(index);
    float* m = state_tensor(index, "exp_avg").data();
    float* v = state_tensor(index, "exp_avg_sq").data();
    const int64_t t = ++state_[index].step;
    const kernels::AdamStep step = kernels::adam_step(lr(), options_.beta1, options_.beta2, t);
    if (param.device().is_cpu()) {
      kernels::cpu::adam_update(param.data(), grad.data(), m, v, param.numel(), hyper, step);
    } else {
      on_gpu[param.device().index].push_back({.param = param.data(), .grad = grad.data(), .exp_avg = m,
                                              .exp_avg_sq = v, .numel = param.numel(), .first_chunk = 0,
                                              .step = step});
      gpu_grads.push_back(grad);
    }
  }
  for (auto& [device, tensors] : on_gpu) cuda::adam_multi_tensor(device, tensors, hyper);
}

}  // namespace chex::optim
