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

#include "kernels/conv2d.h"
#include "kernels/optimizer.h"
#include "kernels/pooling.h"

namespace chex::cuda {

using kernels::cpu::Conv2dGeometry;
using kernels::cpu::Pool2dGeometry;

// --- Convolution (cuDNN) -------------------------------------------------------------------------
void conv2d_forward(int device, const Conv2dGeometry& g, const float* x, int64_t x_batch_stride, const float* weight,
                    const float* bias, float* y, int64_t y_batch_stride);
void conv2d_backward_data(int device, const Conv2dGeometry& g, const float* dy, int64_t dy_batch_stride,
                          const float* weight, float* dx, int64_t dx_batch_stride);
void conv2d_backward_weight(int device, const Conv2dGeometry& g, const float* x, int64_t x_batch_stride,
                            const float* dy, int64_t dy_batch_stride, float* dweight, float* dbias);

// --- Linear (cuBLAS) -----------------------------------------------------------------------------
void linear_forward(int device, const float* x, const float* weight, const float* bias, float* y, int64_t batch,
                    int64_t in, int64_t out);
void linear_backward_data(int device, const float* dy, const float* weight, float* dx, int64_t batch, int64_t in,
                          int64_t out);
void linear_backward_weight(int device, const float* x, const float* dy, float* dweight, float* dbias, int64_t batch,
                            int64_t in, int64_t out);

// --- Pooling -------------------------------------------------------------------------------------
void max_pool2d_forward(int device, const float* x, int64_t x_batch_stride, float* y, const Pool2dGeometry& g);
void max_pool2d_backward(int device, const float* x, int64_t x_batch_stride, const float* dy, float* dx,
                         const Pool2dGeometry& g);
void avg_pool2d_forward(int device, const float* x, int64_t x_batch_stride, float* y, const Pool2dGeometry& g);
void avg_pool2d_backward(int device, const float* dy, float* dx, const Pool2dGeometry& g);
void global_avg_pool_forward(int device, const float* x, int64_t x_batch_stride, float* y, int64_t batch,
                             int64_t channels, int64_t spatial);
void global_avg_pool_backward(int device, const float* dy, float* dx, int64_t batch, int64_t channels,
                              int64_t spatial);

// --- Channel concatenation -----------------------------------------------------------------------
void copy_channels(int device, const float* src, int64_t src_batch_stride, int64_t src_channel_offset, float* dst,
                   int64_t dst_batch_stride, int64_t dst_channel_offset, int64_t batch, int64_t channels,
                   int64_t spatial);
// The same ranges, accumulated (dst += src): a dense block's gradient buffer.
void add_channels(int device, const float* src, int64_t src_batch_stride, int64_t src_channel_offset, float* dst,
                  int64_t dst_batch_stride, int64_t dst_channel_offset, int64_t batch, int64_t channels,
                  int64_t spatial);

// --- Elementwise and reductions (contiguous arrays of n floats) ---------------------------------
void fill(int device, float* y, int64_t n, float value);
void add(int device, const float* a, const float* b, float* y, int64_t n);
void sub(int device, const float* a, const float* b, float* y, int64_t n);
void mul(int device, const float* a, const float* b, float* y, int64_t n);
void scale(int device, const float* a, float factor, float* y, int64_t n);
void axpy(int device, float alpha, const float* x, float* y, int64_t n);
void relu_forward(int device, const float* x, float* y, int64_t n);
void relu_backward(int device, const float* y, const float* dy, float* dx, int64_t n);
void sigmoid_forward(int device, const float* x, float* y, int64_t n);
void sigmoid_backward(int device, const float* y, const float* dy, float* dx, int64_t n);
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
