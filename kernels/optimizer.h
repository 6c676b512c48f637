#pragma once
// Optimizer updates over raw float arrays: Adam and SGD exactly as PyTorch's torch.optim (see
// engine/include/chex/optim/adam.h, sgd.h). The CPU twins update one tensor; the CUDA launchers
// update every parameter of a model in one launch (multi-tensor), from a table of tensors that
// lives in device memory.
#include <cmath>
#include <cstdint>

#include "kernels/queue.h"

namespace chex::kernels {

// Adam's hyper-parameters, rounded to float as PyTorch rounds its Python scalars for a float32
// tensor.
struct AdamHyper {
  float beta1 = 0.9f, beta2 = 0.999f;
  float one_minus_beta1 = 0.1f, one_minus_beta2 = 0.001f;  // computed in double, then rounded
  float eps = 1e-8f;
  float weight_decay = 0.f;  // L2: added to the gradient
};

inline AdamHyper adam_hyper(double beta1, double beta2, double eps, double weight_decay) {
  return {static_cast<float>(beta1),       static_cast<float>(beta2), static_cast<float>(1.0 - beta1),
          static_cast<float>(1.0 - beta2), static_cast<float>(eps),   static_cast<float>(weight_decay)};
}

// The step-dependent scalars of Adam's update at step t (1 for the first), from bias corrections
// computed in double as in Python.
struct AdamStep {
  float neg_step_size = 0.f;          // -lr / (1 - beta1^t)
  float bias_correction2_sqrt = 1.f;  // sqrt(1 - beta2^t)
};

inline AdamStep adam_step(double lr, double beta1, double beta2, int64_t t) {
  const double bias_correction1 = 1.0 - std::pow(beta1, static_cast<double>(t));
  const double bias_correction2 = 1.0 - std::pow(beta2, static_cast<double>(t));
  return {static_cast<float>(-lr / bias_correction1), static_cast<float>(std::sqrt(bias_correction2))};
}

// SGD's scalars, rounded to float as PyTorch does.
struct SgdHyper {
  float weight_decay = 0.f;
  float momentum = 0.f;
  float one_minus_dampening = 1.f;
  float neg_lr = 0.f;
  bool nesterov = false;
};

inline SgdHyper sgd_hyper(double lr, double momentum, double dampening, double weight_decay, bool nesterov) {
  return {static_cast<float>(weight_decay), static_cast<float>(momentum), static_cast<float>(1.0 - dampening),
          static_cast<float>(-lr), nesterov};
}

// One tensor of a multi-tensor Adam step. Tensors are split into chunks of kOptimizerChunk
// elements, one block each; first_chunk (set by plan_optimizer_chunks) is the index of the
// tensor's first chunk.
struct AdamTensor {
  float* param = nullptr;
  const float* grad = nullptr;
  float* exp_avg = nullptr;
  float* exp_avg_sq = nullptr;
  int64_t numel = 0;
  int64_t first_chunk = 0;
  AdamStep step;  // per tensor: step counts may differ between parameters, as in PyTorch
};

// One tensor of a multi-tensor SGD step. momentum_buffer is null when momentum is 0;
// first_step != 0 makes the buffer start as the gradient itself, as PyTorch's does.
struct SgdTensor {
  float* param = nullptr;
  const float* grad = nullptr;
  float* momentum_buffer = nullptr;
  int64_t numel = 0;
  int64_t first_chunk = 0;
  int first_step = 0;
};

// Elements per chunk: 8 float4 per thread of a 256-thread block.
constexpr int64_t kOptimizerChunk = 8192;

// Fills first_chunk of each tensor (AdamTensor or SgdTensor) and returns the number of chunks.
template <typename Tensor>
int64_t plan_optimizer_chunks(Tensor* tensors, int count) {
  int64_t chunks = 0;
  for (int i = 0; i < count; ++i) {
    tensors[i].first_chunk = chunks;
    chunks += (tensors[i].numel + kOptimizerChunk - 1) / kOptimizerChunk;
  }
  return chunks;
}

}  // namespace chex::kernels

namespace chex::kernels {

// Every tensor of a table in one call. The table (count entries, chunks planned by
// plan_optimizer_chunks) lies in memory the kernel reads: host memory for the CPU, device memory
// for the GPU, uploaded by the caller before the call (no host work inside a kernel call).
struct AdamMultiTensorArgs {
  const AdamTensor* table = nullptr;
  int count = 0;
  int64_t chunks = 0;
  AdamHyper hyper;
};
struct SgdMultiTensorArgs {
  const SgdTensor* table = nullptr;
  int count = 0;
  int64_t chunks = 0;
  SgdHyper hyper;
};

}  // namespace chex::kernels

// The kernels of this family that both backends provide (engine/src/backend/backend.h), declared
// from this list in both namespaces (CHEX_DECLARE_KERNEL, kernels/queue.h):
//   adam_multi_tensor, sgd_multi_tensor  one step of every tensor of the table (the args above).
#define CHEX_OPTIMIZER_KERNELS(X)                            \
  X(void, adam_multi_tensor, const AdamMultiTensorArgs& a)   \
  X(void, sgd_multi_tensor, const SgdMultiTensorArgs& a)

namespace chex::kernels::cpu {

// One Adam step of a tensor of n elements (p, m, v updated in place):
//   g = grad + weight_decay·p;  m = β1·m + (1 − β1)·g;  v = β2·v + (1 − β2)·g²
//   p += neg_step_size · m / (sqrt(v) / bias_correction2_sqrt + eps)
void adam_update(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n, const AdamHyper& h,
                 const AdamStep& step);
// One SGD step; momentum_buffer is null when momentum is 0.
void sgd_update(float* param, const float* grad, float* momentum_buffer, int64_t n, const SgdHyper& h,
                bool first_step);
// The table's kernels (the list above): the table's tensors one by one, with adam_update /
// sgd_update.
CHEX_OPTIMIZER_KERNELS(CHEX_DECLARE_KERNEL)

}  // namespace chex::kernels::cpu

#include "kernels/gpu.h"

namespace chex::kernels::CHEX_GPU_NAMESPACE {

// One launch updates every tensor of `table`: `count` entries in device memory, planned by
// plan_optimizer_chunks (which returned `chunks`) on a host copy. The table may be rebuilt and
// uploaded every step (a few bytes per tensor); the launch only reads it.
CHEX_OPTIMIZER_KERNELS(CHEX_DECLARE_KERNEL)

}  // namespace chex::kernels::CHEX_GPU_NAMESPACE
