// Sigmoid + weighted binary cross-entropy on logits (CUDA twin of bce_cpu.cpp): the loss's mean and
// the gradient of the logits in one pass over the values.
//
// Launch shape: enough blocks to fill the GPU at any batch (one block per 1,024 values, at most
// kMaxBlocks; a grid-stride loop beyond that). One block alone once served every batch and
// serialised at large ones ([65536, 14] took 5.1 ms on an H200). The loss is summed in double in a
// fixed order, so it does not depend on the schedule: each thread's share and each block's tree
// (warp shuffles, then one warp over the per-warp sums) depend only on the size; a block stores its
// partial sum in the workspace, and a second one-block kernel adds the partials in a fixed tree
// and divides. A batch that fits one block (CheXNet's [16, 14] is 224 values) writes the mean
// directly: one launch, no workspace. The gradient alone (the op's backward) is one launch at any
// size. Each value is read once; the class of a value follows from the previous one's by an add
// and a compare (no division in the loop). Rows of [N, 14] start only 8-byte aligned, so the
// loads stay scalar (coalesced all the same). One template for float32 and bf16 logits (L, the
// device type of the logits only): a bf16 logit is widened to float and the rest is the float32
// computation (the loss in double, dlogits in fp32: kernels/bce.h says why).
#include <algorithm>
#include <cstdint>
#include <limits>

#include "kernels/bce.h"
#include "kernels/cuda_compat.h"
#include "kernels/cuda_helpers.cuh"
#include "kernels/element_type.cuh"

namespace chex::kernels::CHEX_GPU_NAMESPACE {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int64_t kValuesPerBlock = 4 * kThreads;  // each thread about 4 values before the tree
constexpr int64_t kMaxBlocks = 2048;               // H200: 132 SMs x 8 blocks of 256 = 1,056 at once

// log1p(e^-|x|): softplus(x) = max(x, 0) + it and softplus(-x) = max(-x, 0) + it, bitwise what the
// twin's two softplus calls compute; the exponent is never positive.
__device__ __forceinline__ double log1p_exp_neg_abs(double x) { return log1p(exp(-fabs(x))); }

// sigmoid(x) written with e^-|x| so that the exponent never overflows.
__device__ __forceinline__ float stable_sigmoid(float x) {
  const float e = expf(-fabsf(x));
  return x >= 0.f ? 1.f / (1.f + e) : e / (1.f + e);
}

// Sums `value` over the block in a fixed tree; the total is valid in thread 0.
__device__ double block_sum(double value) {
  CHEX_SHARED(double[kWarps], per_warp);
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  value = warp_sum(value);
  if (lane == 0) per_warp[warp] = value;
  __syncthreads();
  return warp == 0 ? warp_sum(lane < kWarps ? per_warp[lane] : 0.0) : 0.0;
}

// loss_out: the mean (one block) or this block's partial sum (several), when not null; dlogits =
// factor * dloss/dlogit when not null, factor = *grad_output (1 when null) / (N*C) as the twin
// computes it. Index is int32_t where total plus the grid's threads fits, for cheaper loop
// arithmetic.
template <typename L, typename Index>
__global__ void __launch_bounds__(kThreads)
    bce_with_logits_kernel(const L* logits, const float* targets, const float* pos_weight,
                           const float* neg_weight, Index total, Index classes, double* partials, float* loss,
                           const float* grad_output, float* dlogits) {
  const float factor = (grad_output ? *grad_output : 1.f) / static_cast<float>(total);
  const Index step = grid_threads<Index>();
  const Index class_step = step % classes;
  Index i = first_index<Index>();
  Index c = i % classes;
  double sum = 0.0;
  const bool want_loss = partials || loss;
  for (; i < total; i += step) {
    const float x = to_float(logits[i]), y = targets[i];
    const float w_pos = pos_weight ? pos_weight[c] : 1.f;
    const float w_neg = neg_weight ? neg_weight[c] : 1.f;
    if (want_loss) {
      // -log(sigmoid(x)) = softplus(-x), -log(1 - sigmoid(x)) = softplus(x); in double, as the twin.
      const double xd = x, yd = y, tail = log1p_exp_neg_abs(xd);
      sum += w_pos * yd * (fmax(-xd, 0.0) + tail) + w_neg * (1.0 - yd) * (fmax(xd, 0.0) + tail);
    }
    if (dlogits) {
      const float s = stable_sigmoid(x);
      dlogits[i] = factor * (w_pos * y * (s - 1.f) + w_neg * (1.f - y) * s);
    }
    c += class_step;
    if (c >= classes) c -= classes;
  }
  if (!want_loss) return;  // uniform over the grid: no thread is left at the barrier
  sum = block_sum(sum);
  if (threadIdx.x != 0) return;
  if (partials) {
    partials[blockIdx.x] = sum;
  } else {
    *loss = static_cast<float>(sum / static_cast<double>(total));
  }
}

// One block: the mean from the per-block partial sums, added in a fixed tree.
__global__ void __launch_bounds__(kThreads)
    bce_mean_kernel(const double* partials, int count, int64_t total, float* loss) {
  double sum = 0.0;
  for (int b = static_cast<int>(threadIdx.x); b < count; b += kThreads) sum += partials[b];
  sum = block_sum(sum);
  if (threadIdx.x == 0) *loss = static_cast<float>(sum / static_cast<double>(total));
}

// The grid for total values: a function of the size alone, so the sums' order is too.
int blocks_for(int64_t total) {
  return static_cast<int>(std::clamp<int64_t>((total + kValuesPerBlock - 1) / kValuesPerBlock, 1, kMaxBlocks));
}

template <typename Index, typename Logit>
void launch(const Queue& q, const BasicBceWithLogitsArgs<Logit>& a, int64_t total, int blocks, double* partials) {
  using L = DeviceElement<Logit>;
  CHEX_LAUNCH((bce_with_logits_kernel<L, Index>), blocks, kThreads, 0, q.stream, device_pointer(a.logits),
              a.targets, a.pos_weight, a.neg_weight, static_cast<Index>(total), static_cast<Index>(a.classes), partials,
              partials ? nullptr : a.loss, a.grad_output, a.dlogits);
}

template <typename Logit>
void loss_and_gradient(const Queue& q, const BasicBceWithLogitsArgs<Logit>& a) {
  CHEX_CHECK(a.batch >= 0 && a.classes >= 0, "bce_with_logits: negative size");
  const int64_t total = a.batch * a.classes;
  CHEX_CHECK(total > 0, "bce_with_logits of an empty batch: its mean is undefined");
  if (!a.loss && !a.dlogits) return;
  const int blocks = blocks_for(total);
  double* partials = nullptr;
  if (a.loss && blocks > 1) {
    CHEX_CHECK(a.workspace, "bce_with_logits of [", a.batch, ", ", a.classes,
               "] needs a workspace of bce_with_logits_workspace_bytes() bytes for its partial sums");
    partials = static_cast<double*>(a.workspace);
  }
  const bool fits_int32 = total + int64_t{blocks} * kThreads < std::numeric_limits<int32_t>::max();
  if (fits_int32) {
    launch<int32_t>(q, a, total, blocks, partials);
  } else {
    launch<int64_t>(q, a, total, blocks, partials);
  }
  if (partials) CHEX_LAUNCH(bce_mean_kernel, 1, kThreads, 0, q.stream, partials, blocks, total, a.loss);
}

}  // namespace

size_t bce_with_logits_workspace_bytes(const Queue&, int64_t batch, int64_t classes) {
  const int blocks = blocks_for(batch * classes);
  return blocks > 1 ? sizeof(double) * static_cast<size_t>(blocks) : 0;
}

void bce_with_logits(const Queue& q, const BceWithLogitsArgs& a) { loss_and_gradient(q, a); }

void bce_with_logits_bf16(const Queue& q, const BceWithLogitsArgsBf16& a) { loss_and_gradient(q, a); }

}  // namespace chex::kernels::CHEX_GPU_NAMESPACE
