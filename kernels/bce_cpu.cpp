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

// The twins on float or bf16 logits (Logit): each logit widened to float, the rest as for float.
template <typename Logit>
double forward(const Logit* logits, const float* targets, const float* pos_weight, const float* neg_weight,
               int64_t batch, int64_t classes) {
  double total = 0.0;
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t c = 0; c < classes; ++c) {
      const double x = to_float(logits[n * classes + c]);
      const double y = targets[n * classes + c];
      const double w_pos = pos_weight ? pos_weight[c] : 1.0;
      const double w_neg = neg_weight ? neg_weight[c] : 1.0;
      // -log(sigmoid(x)) = softplus(-x), -log(1 - sigmoid(x)) = softplus(x).
      total += w_pos * y * softplus(-x) + w_neg * (1.0 - y) * softplus(x);
    }
  }
  return total / static_cast<double>(batch * classes);
}

template <typename Logit>
void backward(const Logit* logits, const float* targets, const float* pos_weight, const float* neg_weight,
              int64_t batch, int64_t classes, float grad_output, float* dlogits) {
  const float factor = grad_output / static_cast<float>(batch * classes);
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t c = 0; c < classes; ++c) {
      const int64_t i = n * classes + c;
      const float s = stable_sigmoid(to_float(logits[i]));
      const float y = targets[i];
      const float w_pos = pos_weight ? pos_weight[c] : 1.f;
      const float w_neg = neg_weight ? neg_weight[c] : 1.f;
      dlogits[i] = factor * (w_pos * y * (s - 1.f) + w_neg * (1.f - y) * s);
    }
  }
}

// Bitwise forward and backward.
template <typename Logit>
void loss_and_gradient(const BasicBceWithLogitsArgs<Logit>& a) {
  if (a.loss)
    *a.loss = static_cast<float>(forward(a.logits, a.targets, a.pos_weight, a.neg_weight, a.batch, a.classes));
  if (a.dlogits)
    backward(a.logits, a.targets, a.pos_weight, a.neg_weight, a.batch, a.classes, a.grad_output ? *a.grad_output : 1.f,
             a.dlogits);
}

}  // namespace

double bce_with_logits_forward(const float* logits, const float* targets, const float* pos_weight,
                               const float* neg_weight, int64_t batch, int64_t classes) {
  return forward(logits, targets, pos_weight, neg_weight, batch, classes);
}

void bce_with_logits_backward(const float* logits, const float* targets, const float* pos_weight,
                              const float* neg_weight, int64_t batch, int64_t classes, float grad_output,
                              float* dlogits) {
  backward(logits, targets, pos_weight, neg_weight, batch, classes, grad_output, dlogits);
}

size_t bce_with_logits_workspace_bytes(const Queue& /*q*/, int64_t /*batch*/, int64_t /*classes*/) { return 0; }

void bce_with_logits(const Queue& /*q*/, const BceWithLogitsArgs& a) { loss_and_gradient(a); }

void bce_with_logits_bf16(const Queue& /*q*/, const BceWithLogitsArgsBf16& a) { loss_and_gradient(a); }

}  // namespace chex::kernels::cpu
