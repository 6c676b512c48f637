#pragma once
// Reference kernels for bench_kernels (bench_baselines.cu): a plain copy, whose bandwidth is the
// practical ceiling a memory-bound kernel is compared with, the read that flushes L2, and the loss half of the unfused
// "cuDNN sigmoid, then the loss" counterpart of our fused sigmoid + BCE kernel.
#include <cstdint>

#include "kernels/gpu.h"

namespace chex::bench {

// dst[i] = src[i], float4 loads and stores (both 16-byte aligned, n a multiple of 4).
void copy_floats(const float* src, float* dst, int64_t n, cudaStream_t stream);

// Reads src[0, n) (float4 loads, 16-byte aligned, n a multiple of 4) and writes at most one value,
// into *sink, only where a thread's sum is exactly -1 (never, for the zeros bench_kernels reads):
// the store keeps the loads alive. Reading a buffer twice L2's size evicts what a previous run
// left in L2, dirty lines included, without leaving dirty lines of its own (a memset does: their
// write-back would then be charged to the next timed kernel).
void read_floats(const float* src, int64_t n, float* sink, cudaStream_t stream);

// From p = sigmoid(logits): *loss = mean BCE and dlogits = (w+·y·(p − 1) + w−·(1 − y)·p) / n.
// One block; atomics-free. pos_weight / neg_weight are [classes].
void bce_from_probabilities(const float* p, const float* targets, const float* pos_weight, const float* neg_weight,
                            int64_t batch, int64_t classes, float* loss, float* dlogits, cudaStream_t stream);

}  // namespace chex::bench
