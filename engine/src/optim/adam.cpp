#include "chex/optim/adam.h"

#include <cmath>

#include "chex/autograd.h"
#include "chex/error.h"

namespace chex::optim {
namespace {
// Below this many elements one thread does the update: forking costs more than it saves.
constexpr int64_t kParallelThreshold = 1 << 15;
}  // namespace

Adam::Adam(std::vector<Tensor> params, const AdamOptions& options)
    : Optimizer("Adam", std::move(params), options.lr), options_(options) {
  CHEX_CHECK(options.beta1 >= 0.0 && options.beta1 < 1.0, "Adam: beta1 must lie in [0, 1), got ", options.beta1);
  CHEX_CHECK(options.beta2 >= 0.0 && options.beta2 < 1.0, "Adam: beta2 must lie in [0, 1), got ", options.beta2);
  CHEX_CHECK(options.eps >= 0.0, "Adam: eps must not be negative, got ", options.eps);
  CHEX_CHECK(options.weight_decay >= 0.0, "Adam: weight_decay must not be negative, got ", options.weight_decay);
}

void Adam::step() {
  NoGradGuard no_grad;
  // The scalars are rounded to float32 as PyTorch rounds its Python scalars for a float32 tensor;
  // the bias corrections are computed in double, as in Python.
  const auto weight_decay = static_cast<float>(options_.weight_decay);
  const auto beta1 = static_cast<float>(options_.beta1);
  const auto beta2 = static_cast<float>(options_.beta2);
  const auto one_minus_beta1 = static_cast<float>(1.0 - options_.beta1);
  const auto one_minus_beta2 = static_cast<float>(1.0 - options_.beta2);
  const auto eps = static_cast<float>(options_.eps);

  for (size_t index = 0; index < parameters().size(); ++index) {
    const Tensor& param = parameters()[index];
    if (!param.grad().defined()) continue;
    const Tensor grad = checked_cpu_gradient(index);
    float* m = state_tensor(index, "exp_avg").data();
    float* v = state_tensor(index, "exp_avg_sq").data();
    const int64_t t = ++state_[index].step;

    const double bias_correction1 = 1.0 - std::pow(options_.beta1, static_cast<double>(t));
    const double bias_correction2 = 1.0 - std::pow(options_.beta2, static_cast<double>(t));
    const auto neg_step_size = static_cast<float>(-lr() / bias_correction1);
    const auto bias_correction2_sqrt = static_cast<float>(std::sqrt(bias_correction2));

    float* p = param.data();
    const float* g = grad.data();
    const int64_t n = param.numel();
#pragma omp parallel for simd schedule(static) if (n >= kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) {
      const float gi = weight_decay != 0.f ? g[i] + weight_decay * p[i] : g[i];
      m[i] = m[i] * beta1 + one_minus_beta1 * gi;
      v[i] = v[i] * beta2 + one_minus_beta2 * gi * gi;
      const float denom = std::sqrt(v[i]) / bias_correction2_sqrt + eps;
      p[i] = p[i] + neg_step_size * m[i] / denom;
    }
  }
}

}  // namespace chex::optim
