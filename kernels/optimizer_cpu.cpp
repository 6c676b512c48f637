#include "optimizer.h"

#include <cmath>

namespace chex::kernels::cpu {
namespace {
// Below this many elements one thread does the update: forking costs more than it saves.
constexpr int64_t kParallelThreshold = 1 << 15;
}  // namespace

void adam_update(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n, const AdamHyper& h,
                 const AdamStep& step) {
  float* p = param;
  const float* g = grad;
  float* m = exp_avg;
  float* v = exp_avg_sq;
#pragma omp parallel for simd schedule(static) if (n >= kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) {
    const float gi = h.weight_decay != 0.f ? g[i] + h.weight_decay * p[i] : g[i];
    m[i] = m[i] * h.beta1 + h.one_minus_beta1 * gi;
    v[i] = v[i] * h.beta2 + h.one_minus_beta2 * gi * gi;
    const float denom = std::sqrt(v[i]) / step.bias_correction2_sqrt + h.eps;
    p[i] = p[i] + step.neg_step_size * m[i] / denom;
  }
}

void sgd_update(float* param, const float* grad, float* momentum_buffer, int64_t n, const SgdHyper& h,
                bool first_step) {
  float* p = param;
  const float* g = grad;
  float* buffer = momentum_buffer;
#pragma omp parallel for simd schedule(static) if (n >= kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) {
    const float gi = h.weight_decay != 0.f ? g[i] + h.weight_decay * p[i] : g[i];
    float direction = gi;
    if (buffer) {
      buffer[i] = first_step ? gi : buffer[i] * h.momentum + h.one_minus_dampening * gi;
      direction = h.nesterov ? gi + h.momentum * buffer[i] : buffer[i];
    }
    p[i] = p[i] + h.neg_lr * direction;
  }
}

void adam_multi_tensor(const Queue& /*q*/, const AdamMultiTensorArgs& a) {
  for (int i = 0; i < a.count; ++i) {
    const AdamTensor& t = a.table[i];
    adam_update(t.param, t.grad, t.exp_avg, t.exp_avg_sq, t.numel, a.hyper, t.step);
  }
}

void sgd_multi_tensor(const Queue& /*q*/, const SgdMultiTensorArgs& a) {
  for (int i = 0; i < a.count; ++i) {
    const SgdTensor& t = a.table[i];
    sgd_update(t.param, t.grad, t.momentum_buffer, t.numel, a.hyper, t.first_step != 0);
  }
}

}  // namespace chex::kernels::cpu
