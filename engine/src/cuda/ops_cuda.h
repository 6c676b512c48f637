#pragma once
// The CUDA side of every op: the same shapes as the CPU kernels in kernels/*.h (the same
// arguments, device pointers, batch strides), plus the device index first. The ops in
// engine/src/ops/ call kernels::cpu::X or cuda::X by the tensors' device.
//
// Every function enqueues its work on the device's one stream (chex::cuda::stream) and returns
// without waiting; results are read back through Tensor::to()/item(), which synchronise. Scratch
// memory comes from the device's stream-ordered allocator.
//
// Built from engine/src/cuda/*_cuda.cpp when the CUDA backend is compiled in; in a CPU-only build
// no CUDA tensor can exist, and engine/src/cuda/cuda_stub.cpp defines these as the "no CUDA
// backend" error.
#include <cstdint>

#include <vector>

#include "kernels/optimizer.h"

namespace chex::cuda {

// --- Reductions (contiguous arrays of n floats) ------------------------------------------------
// *result = sum of x (a device scalar: no host synchronisation).
void sum(int device, const float* x, int64_t n, float* result);
// y[i] = *value for i < n, from a device scalar.
void broadcast_scalar(int device, const float* value, float* y, int64_t n);

// --- Loss ----------------------------------------------------------------------------------------
// The mean weighted BCE into the device scalar *loss and, unless dlogits is null, its gradient
// with respect to the logits (for a loss gradient of 1), in one pass; the op's backward scales
// dlogits by the incoming gradient on the device (mul_by_scalar), so nothing waits for the host.
void bce_with_logits(int device, const float* logits, const float* targets, const float* pos_weight,
                     const float* neg_weight, int64_t batch, int64_t classes, float* loss, float* dlogits);
// y = a · *scalar, the scalar in device memory.
void mul_by_scalar(int device, const float* a, const float* scalar, float* y, int64_t n);

// --- Optimizer updates ---------------------------------------------------------------------------
// Every tensor of the list (device pointers) in one launch; first_chunk is planned here.
void adam_multi_tensor(int device, std::vector<kernels::AdamTensor>& tensors, const kernels::AdamHyper& hyper);
void sgd_multi_tensor(int device, std::vector<kernels::SgdTensor>& tensors, const kernels::SgdHyper& hyper);

}  // namespace chex::cuda
