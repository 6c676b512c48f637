#include "chex/optim/sgd.h"

#include <vector>

#include "chex/autograd.h"
#include "chex/error.h"
#include "kernels/optimizer.h"
#include "multi_tensor.h"

namespace chex::optim {

struct SGD::Tables : detail::StagedTables<kernels::SgdTensor, kernels::SgdMultiTensorArgs, kernels::SgdHyper> {};

SGD::SGD(std::vector<Tensor> params, const SGDOptions& options)
    : Optimizer("SGD", std::move(params), options.lr), options_(options), tables_(std::make_shared<Tables>()) {
  CHEX_CHECK(options.momentum >= 0.0, "SGD: momentum must not be negative, got ", options.momentum);
  CHEX_CHECK(options.weight_decay >= 0.0, "SGD: weight_decay must not be negative, got ", options.weight_decay);
  CHEX_CHECK(!options.nesterov || (options.momentum > 0.0 && options.dampening == 0.0),
             "SGD: nesterov momentum needs momentum > 0 and dampening = 0, got momentum ", options.momentum,
             " and dampening ", options.dampening);
}

std::vector<std::string> SGD::state_names() const {
  if (options_.momentum == 0.0) return {};
  return {"momentum_buffer"};
}

void SGD::stage_step() {
  NoGradGuard no_grad;
  const kernels::SgdHyper hyper = kernels::sgd_hyper(lr(), options_.momentum, options_.dampening,
                                                     options_.weight_decay, options_.nesterov);
  // As Adam: every parameter of a device in one call there.
  tables_->begin(hyper);
  for (size_t index = 0; index < parameters().size(); ++index) {
    const Tensor& param = parameters()[index];
    if (!param.grad().defined()) continue;
    const Tensor grad = checked_gradient(index);
    // The momentum buffer starts as the first gradient itself (not as a damped one).
    const bool first_step = state_[index].step == 0;
    float* buffer = hyper.momentum != 0.f ? state_tensor(index, "momentum_buffer").data() : nullptr;
    ++state_[index].step;
    tables_->add(param, grad,
               {.param = param.data(), .grad = grad.data(), .momentum_buffer = buffer, .numel = param.numel(),
                .first_chunk = 0, .first_step = first_step ? 1 : 0});
  }
  tables_->upload();
}

void SGD::launch_staged_step() const { tables_->launch(&backend::KernelTable::sgd_multi_tensor); }

std::string SGD::staged_launch_key() const { return tables_->launch_key(); }

}  // namespace chex::optim
