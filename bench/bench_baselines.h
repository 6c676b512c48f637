#pragma once
// Reference kernels for bench_kernels (bench_baselines.cu): a plain copy, whose bandwidth is the
// practical ceiling a memory-bound kernel is compared with, and the loss half of the unfused
// "cuDNN sigmoid, then the loss" counterpart of our fused sigmoid + BCE kernel.
#include <cstdint>

#include "kernels/gpu.h"

namespace chex::bench {

// dst[i] = src[i], float4 loads and stores (both 16-byte aligned, n a multiple of 4).
void copy_floats(const float* src, float* dst, int64_t n, cudaStream_t stream);

// From p = sigmoid(logits): *loss = mean BCE and dlogits = (w+·y·(p − 1) + w−·(1 − y)·p) / n.
// One block; atomics-free. pos_weight / neg_weight are [classes].
void bce_from_probabilities(const float* p, const float* targets, const float* pos_weight, const float* neg_weight,
                            int64_t batch, int64_t classes, float* loss, float* dlogits, cudaStream_t stream);

}  // namespace chex::bench
