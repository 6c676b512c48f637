#pragma once
// Weighted binary cross-entropy on logits (sigmoid fused in), over [N, C] contiguous arrays: the
// CheXNet loss, with per-class weights for positives and negatives. CPU twin (the reference the
// CUDA kernels are tested against).
//
//   loss = -1/(N*C) * sum_{n,c} ( w+_c * y * log(sigmoid(x)) + w-_c * (1 - y) * log(1 - sigmoid(x)) )
//
// log(sigmoid(x)) = -softplus(-x) and log(1 - sigmoid(x)) = -softplus(x) are evaluated in a form
// that never overflows, so logits of any magnitude give a finite loss and gradient.
#include <cstdint>

namespace chex::kernels::cpu {

// The mean loss, accumulated in double in a fixed order. pos_weight and neg_weight are [C], or
// null for weights of 1.
double bce_with_logits_forward(const float* logits, const float* targets, const float* pos_weight,
                               const float* neg_weight, int64_t batch, int64_t classes);

// dlogits = grad_output * (w+_c * y * (sigmoid(x) - 1) + w-_c * (1 - y) * sigmoid(x)) / (N*C),
// in one pass; grad_output is the gradient of the (scalar) loss.
void bce_with_logits_backward(const float* logits, const float* targets, const float* pos_weight,
                              const float* neg_weight, int64_t batch, int64_t classes, float grad_output,
                              float* dlogits);

}  // namespace chex::kernels::cpu

#include "kernels/gpu.h"

// The CUDA kernel (kernels/bce.cu): the forward and backward of the CPU twins above in one launch
// of one block. Writes the mean loss to the device scalar *loss (as float; summed in double in a
// fixed order) unless loss is null, and dlogits ([batch, classes]) unless dlogits is null, scaled by
// grad_output as bce_with_logits_backward does. Needs batch * classes > 0.
namespace chex::kernels::CHEX_GPU_NAMESPACE {

void bce_with_logits(const float* logits, const float* targets, const float* pos_weight, const float* neg_weight,
                     int64_t batch, int64_t classes, float* loss, float grad_output, float* dlogits,
                     cudaStream_t stream);

}  // namespace chex::kernels::CHEX_GPU_NAMESPACE
