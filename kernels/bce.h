#pragma once
// Weighted binary cross-entropy on logits (sigmoid fused in), over [N, C] contiguous arrays: the
// CheXNet loss, with per-class weights for positives and negatives. CPU twin (the reference the
// CUDA kernels are tested against).
//
//   loss = -1/(N*C) * sum_{n,c} ( w+_c * y * log(sigmoid(x)) + w-_c * (1 - y) * log(1 - sigmoid(x)) )
//
// log(sigmoid(x)) = -softplus(-x) and log(1 - sigmoid(x)) = -softplus(x) are evaluated in a form
// that never overflows, so logits of any magnitude give a finite loss and gradient.
//
// The logits may be bf16 (bce_with_logits_bf16: the classifier's output under bf16 mixed
// precision; one template with the float32 kernel, on the GPU and in the twin). Each logit is
// widened to float (exactly) and everything else is the float32 kernel's computation: the targets
// and weights stay fp32, the loss is summed in double, and dlogits is written in fp32, so the
// results are the float32 kernel's on the widened logits, bit for bit. Why fp32 for dlogits: it
// is the gradient every parameter's gradient derives from, and only [N, C] values (224 for
// CheXNet: nothing to save); a bf16 dlogits would round each by up to 2^-9 relative, which no
// later step can undo, whereas a consumer that wants bf16 (a bf16 GEMM in the classifier's
// backward) rounds it once with cast_float_to_bf16 (PyTorch's autocast does the same: its BCE runs
// in fp32 and the gradient is cast when it reaches the bf16 linear layer).
#include <cstddef>
#include <cstdint>

#include "kernels/bfloat16.h"
#include "kernels/queue.h"

namespace chex::kernels {

// The forward and the backward, either or both in one call: the mean loss into the scalar *loss
// (device memory on a GPU, as float; summed in double in a fixed order) unless loss is null, and
// dlogits ([batch, classes]) for a loss gradient of *grad_output unless dlogits is null. The
// incoming gradient is a scalar in the device's memory (null for 1), read by the kernel, so the
// op's backward waits for no host read; and the CPU's gradient is bitwise the twin's for any
// incoming gradient (scaling a gradient for 1 afterwards would round differently: training scales
// the loss).
// pos_weight and neg_weight are [classes], or null for weights of 1. Needs batch * classes > 0.
// workspace: bce_with_logits_workspace_bytes(batch, classes) bytes when loss is not null (the
// GPU's per-block partial sums; 0, and null allowed, on the CPU and for small batches); the same
// for both logit types. Logit: float or BFloat16, the logits' type only.
template <typename Logit>
struct BasicBceWithLogitsArgs {
  int64_t batch = 0;
  int64_t classes = 0;
  const Logit* logits = nullptr;
  const float* targets = nullptr;
  const float* pos_weight = nullptr;
  const float* neg_weight = nullptr;
  float* loss = nullptr;
  const float* grad_output = nullptr;
  float* dlogits = nullptr;
  void* workspace = nullptr;
};
using BceWithLogitsArgs = BasicBceWithLogitsArgs<float>;
using BceWithLogitsArgsBf16 = BasicBceWithLogitsArgs<BFloat16>;

}  // namespace chex::kernels

// The kernels of this family that both backends provide (engine/src/backend/backend.h), declared
// from this list in both namespaces (CHEX_DECLARE_KERNEL, kernels/queue.h):
//   bce_with_logits                  the loss and/or its gradient (BceWithLogitsArgs); on the GPU
//                                    (kernels/bce.cu) the forward and backward in one launch over
//                                    many blocks, plus a one-block launch adding their partial sums
//                                    when the loss is asked for and the batch needs several blocks.
//   bce_with_logits_workspace_bytes  the workspace bce_with_logits needs for the loss (0 on the CPU).
//   bce_with_logits_bf16             the same on bf16 logits (above), with the same workspace.
#define CHEX_LOSS_KERNELS(X)                                                  \
  X(void, bce_with_logits, const BceWithLogitsArgs& a)                        \
  X(size_t, bce_with_logits_workspace_bytes, int64_t batch, int64_t classes) \
  X(void, bce_with_logits_bf16, const BceWithLogitsArgsBf16& a)

namespace chex::kernels::cpu {

CHEX_LOSS_KERNELS(CHEX_DECLARE_KERNEL)

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

namespace chex::kernels::CHEX_GPU_NAMESPACE { CHEX_LOSS_KERNELS(CHEX_DECLARE_KERNEL) }
