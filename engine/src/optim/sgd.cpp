#include "chex/optim/sgd.h"

#include "chex/autograd.h"
#include "chex/error.h"

namespace chex::optim {
namespace {
// Below this many elements one thread does the update: forking costs more than it saves.
constexpr int64_t kParallelThreshold = 1 << 15;
}  // namespace

SGD::SGD(std::vector<Tensor> params, const SGDOptions& options)
    : Optimizer("SGD", std::move(params), options.lr), options_(options) {
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

void SGD::step() {
  NoGradGuard no_grad;
  // Scalars rounded to float32 as PyTorch rounds its Python scalars for a float32 tensor.
  const auto weight_decay = static_cast<float>(options_.weight_decay);
  const auto momentum = static_cast<float>(options_.momentum);
  const auto one_minus_dampening = static_cast<float>(1.0 - options_.dampening);
  const auto neg_lr = static_cast<float>(-lr());
  const bool nesterov = options_.nesterov;

  for (size_t index = 0; index < parameters().size(); ++index) {
    const Tensor& param = parameters()[index];
    if (!param.grad().defined()) continue;
    const Tensor grad = checked_cpu_gradient(index);
    // The momentum buffer starts as the first gradient itself (not as a damped one).
    const bool first_step = state_[index].step == 0;
    float* buffer = momentum != 0.f ? state_tensor(index, "momentum_buffer").data() : nullptr;
    ++state_[index].step;

    float* p = param.data();
    const float* g = grad.data();
    const int64_t n = param.numel();
#pragma omp parallel for simd schedule(static) if (n >= kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) {
      const float gi = weight_decay != 0.f ? g[i] + weight_decay * p[i] : g[i];
      float direction = gi;
      if (buffer) {
        buffer[i] = first_step ? gi : buffer[i] * momentum + one_minus_dampening * gi;
        direction = nesterov ? gi + momentum * buffer[i] : buffer[i];
      }
      p[i] = p[i] + neg_lr * direction;
    }
  }
}

}  // namespace chex::optim
