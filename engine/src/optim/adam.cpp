#include "chex/optim/adam.h"

#include <vector>

#include "chex/autograd.h"
#include "chex/error.h"
#include "kernels/optimizer.h"
#include "multi_tensor.h"

namespace chex::optim {

struct Adam::Tables : detail::StagedTables<kernels::AdamTensor, kernels::AdamMultiTensorArgs, kernels::AdamHyper> {};

Adam::Adam(std::vector<Tensor> params, const AdamOptions& options)
    : Optimizer("Adam", std::move(params), options.lr), options_(options), tables_(std::make_shared<Tables>()) {
  CHEX_CHECK(options.beta1 >= 0.0 && options.beta1 < 1.0, "Adam: beta1 must lie in [0, 1), got ", options.beta1);
  CHEX_CHECK(options.beta2 >= 0.0 && options.beta2 < 1.0, "Adam: beta2 must lie in [0, 1), got ", options.beta2);
  CHEX_CHECK(options.eps >= 0.0, "Adam: eps must not be negative, got ", options.eps);
  CHEX_CHECK(options.weight_decay >= 0.0, "Adam: weight_decay must not be negative, got ", options.weight_decay);
}

void Adam::stage_step() {
  NoGradGuard no_grad;
  const kernels::AdamHyper hyper =
      kernels::adam_hyper(options_.beta1, options_.beta2, options_.eps, options_.weight_decay);
  // Every parameter of a device in one call there (on the CPU, one by one inside it).
  tables_->begin(hyper);
  for (size_t index = 0; index < parameters().size(); ++index) {
    const Tensor& param = parameters()[index];
    if (!param.grad().defined()) continue;
    const Tensor grad = checked_gradient(index);
    float* m = state_tensor(index, "exp_avg").data();
    float* v = state_tensor(index, "exp_avg_sq").data();
    const int64_t t = ++state_[index].step;
    const kernels::AdamStep step = kernels::adam_step(lr(), options_.beta1, options_.beta2, t);
    tables_->add(param, grad,
               {.param = param.data(), .grad = grad.data(), .exp_avg = m, .exp_avg_sq = v, .numel = param.numel(),
                .first_chunk = 0, .step = step});
  }
  tables_->upload();
}

void Adam::launch_staged_step() const { tables_->launch(&backend::KernelTable::adam_multi_tensor); }

std::string Adam::staged_launch_key() const { return tables_->launch_key(); }

}  // namespace chex::optim
