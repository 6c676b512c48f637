// Sigmoid + weighted binary cross-entropy on logits (CUDA twin of bce_cpu.cpp): the loss's mean and
// the gradient of the logits in one kernel. The CheXNet loss is [batch, 14]: a few hundred values,
// so a single block covers them (grid-stride over its threads) and sums the loss in double in a
// fixed tree (warp shuffles, then one warp over the per-warp sums): deterministic, and no second
// launch or atomics for the mean. Each value is read once; row starts of [N, 14] are only 8-byte
// aligned and the work is launch-bound, so there are no float4 loads here.
#include <cstdint>

#include "kernels/bce.h"
#include "kernels/cuda_compat.h"
#include "kernels/cuda_helpers.cuh"

namespace chex::kernels::CHEX_GPU_NAMESPACE {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

// softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^-|x|): the exponent is never positive.
__device__ __forceinline__ double softplus(double x) { return fmax(x, 0.0) + log1p(exp(-fabs(x))); }

// sigmoid(x) written with e^-|x| so that the exponent never overflows.
__device__ __forceinline__ float stable_sigmoid(float x) {
  const float e = expf(-fabsf(x));
  return x >= 0.f ? 1.f / (1.f + e) : e / (1.f + e);
}

// One block. loss (a device scalar) gets the mean when not null; dlogits = factor * dloss/dlogit
// when not null, factor = *grad_output (1 when null) / (N*C) as the twin computes it.
__global__ void __launch_bounds__(kThreads)
    bce_with_logits_kernel(const float* logits, const float* targets, const float* pos_weight,
                           const float* neg_weight, int64_t total, int64_t classes, float* loss,
                           const float* grad_output, float* dlogits) {
  const float factor = (grad_output ? *grad_output : 1.f) / static_cast<float>(total);
  CHEX_SHARED(double[kWarps], per_warp);
  double sum = 0.0;
  for (int64_t i = threadIdx.x; i < total; i += kThreads) {
    const int64_t c = i % classes;
    const float x = logits[i], y = targets[i];
    const float w_pos = pos_weight ? pos_weight[c] : 1.f;
    const float w_neg = neg_weight ? neg_weight[c] : 1.f;
    if (loss) {
      // -log(sigmoid(x)) = softplus(-x), -log(1 - sigmoid(x)) = softplus(x); in double, as the twin.
      const double xd = x, yd = y;
      sum += w_pos * yd * softplus(-xd) + w_neg * (1.0 - yd) * softplus(xd);
    }
    if (dlogits) {
      const float s = stable_sigmoid(x);
      dlogits[i] = factor * (w_pos * y * (s - 1.f) + w_neg * (1.f - y) * s);
    }
  }
  if (!loss) return;  // uniform over the block: no thread is left at the barrier
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  sum = warp_sum(sum);
  if (lane == 0) per_warp[warp] = sum;
  __syncthreads();
  if (warp == 0) {
    sum = warp_sum(lane < kWarps ? per_warp[lane] : 0.0);
    if (lane == 0) *loss = static_cast<float>(sum / static_cast<double>(total));
  }
}

}  // namespace

void bce_with_logits(const Queue& q, const BceWithLogitsArgs& a) {
  CHEX_CHECK(a.batch >= 0 && a.classes >= 0, "bce_with_logits: negative size");
  const int64_t total = a.batch * a.classes;
  CHEX_CHECK(total > 0, "bce_with_logits of an empty batch: its mean is undefined");
  if (!a.loss && !a.dlogits) return;
  CHEX_LAUNCH(bce_with_logits_kernel, 1, kThreads, 0, q.stream, a.logits, a.targets, a.pos_weight, a.neg_weight, total,
              a.classes, a.loss, a.grad_output, a.dlogits);
}

}  // namespace chex::kernels::CHEX_GPU_NAMESPACE
