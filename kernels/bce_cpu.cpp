#include "bce.h"

#include <cmath>

namespace chex::kernels::cpu {
namespace {

// softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^-|x|): the exponent is never positive.
inline double softplus(double x) { return std::fmax(x, 0.0) + std::log1p(std::exp(-std::fabs(x))); }

// sigmoid(x) = 1 / (1 + e^-x), written with e^-|x| so that the exponent never overflows.
inline float stable_sigmoid(float x) {
  const float e = std::exp(-std::fabs(x));
  return x >= 0.f ? 1.f / (1.f + e) : e / (1.f + e);
}

}  // namespace

double bce_with_logits_forward(const float* logits, const float* targets, const float* pos_weight,
                               const float* neg_weight, int64_t batch, int64_t classes) {
  double total = 0.0;
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t c = 0; c < classes; ++c) {
      const double x = logits[n * classes + c];
      const double y = targets[n * classes + c];
      const double w_pos = pos_weight ? pos_weight[c] : 1.0;
      const double w_neg = neg_weight ? neg_weight[c] : 1.0;
      // -log(sigmoid(x)) = softplus(-x), -log(1 - sigmoid(x)) = softplus(x).
      total += w_pos * y * softplus(-x) + w_neg * (1.0 - y) * softplus(x);
    }
  }
  return total / static_cast<double>(batch * classes);
}

void bce_with_logits_backward(const float* logits, const float* targets, const float* pos_weight,
                              const float* neg_weight, int64_t batch, int64_t classes, float grad_output,
                              float* dlogits) {
  const float factor = grad_output / static_cast<float>(batch * classes);
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t c = 0; c < classes; ++c) {
      const int64_t i = n * classes + c;
      const float s = stable_sigmoid(logits[i]);
      const float y = targets[i];
      const float w_pos = pos_weight ? pos_weight[c] : 1.f;
      const float w_neg = neg_weight ? neg_weight[c] : 1.f;
      dlogits[i] = factor * (w_pos * y * (s - 1.f) + w_neg * (1.f - y) * s);
    }
  }
}

size_t bce_with_logits_workspace_bytes(const Queue& /*q*/, int64_t /*batch*/, int64_t /*classes*/) { return 0; }

// Bitwise bce_with_logits_forward and bce_with_logits_backward.
void bce_with_logits(const Queue& /*q*/, const BceWithLogitsArgs& a) {
  if (a.loss)
    *a.loss = static_cast<float>(
        bce_with_logits_forward(a.logits, a.targets, a.pos_weight, a.neg_weight, a.batch, a.classes));
  if (a.dlogits)
    bce_with_logits_backward(a.logits, a.targets, a.pos_weight, a.neg_weight, a.batch, a.classes,
                             a.grad_output ? *a.grad_output : 1.f, a.dlogits);
}

}  // namespace chex::kernels::cpu
