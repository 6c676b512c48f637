#pragma once
// 2-D convolution on the CPU. The algorithm follows the geometry (conv2d_cpu.cpp chooses): im2col +
// GEMM in general; a 1x1, stride-1, unpadded convolution is a GEMM straight on the input (tile by
// tile of columns when it normalises its input); a stride-1 convolution with many input channels is
// one GEMM per kernel tap on a zero-padded copy of the image; a 3x3, stride-1, padding-1 one from
// 16 x 16 up runs by Winograd's F(2x2, 3x3) (conv2d_winograd.h); and the input gradient of a
// stride-1 convolution with fewer output than input channels is the forward convolution of dy with
// the flipped kernel. Threads: with at least as many samples as threads, each thread takes whole
// samples and runs single-threaded GEMMs; with fewer (batch-1 inference) the forward splits each
// sample's output columns over the threads, and the backward passes take the samples one at a time
// with the threads inside the GEMMs. Called inside a parallel region, a function runs on the
// calling thread alone.
//
// Tensors are NCHW float32 whose dimensions after the batch are densely packed, but the batch
// dimension may have a larger stride ("batch-strided"): a channel slice of a dense block's buffer
// is read and written in place. Each function takes the batch stride of every image tensor it
// touches; weight [C_out, C_in, kH, kW], bias and gradients of parameters are contiguous.
#include <cstddef>
#include <cstdint>

#include "kernels/queue.h"

namespace chex::kernels {

// The shape of one convolution; it describes the launches of both backends.
struct Conv2dGeometry {
  int64_t batch = 0, in_channels = 0, height = 0, width = 0;
  int64_t out_channels = 0, kernel_h = 0, kernel_w = 0;
  int64_t stride = 1, padding = 0;
  int64_t out_height = 0, out_width = 0;

  // Fills out_height and out_width; the caller has checked that the kernel fits the padded input.
  static Conv2dGeometry make(int64_t batch, int64_t in_channels, int64_t height, int64_t width, int64_t out_channels,
                             int64_t kernel_h, int64_t kernel_w, int64_t stride, int64_t padding) {
    Conv2dGeometry g;
    g.batch = batch;
    g.in_channels = in_channels;
    g.height = height;
    g.width = width;
    g.out_channels = out_channels;
    g.kernel_h = kernel_h;
    g.kernel_w = kernel_w;
    g.stride = stride;
    g.padding = padding;
    g.out_height = (height + 2 * padding - kernel_h) / stride + 1;
    g.out_width = (width + 2 * padding - kernel_w) / stride + 1;
    return g;
  }

  int64_t in_plane() const { return height * width; }
  int64_t out_plane() const { return out_height * out_width; }
  int64_t in_sample() const { return in_channels * in_plane(); }     // dense size of one input image
  int64_t out_sample() const { return out_channels * out_plane(); }  // dense size of one output image
  int64_t patch_size() const { return in_channels * kernel_h * kernel_w; }  // a column of im2col
  // 1x1, stride 1, no padding: the input image already is the im2col matrix.
  bool is_pointwise() const { return kernel_h == 1 && kernel_w == 1 && stride == 1 && padding == 0; }
};

// BN + ReLU applied to the input as the convolution reads it, per input channel c:
//   x'[c] = relu((x[c] - mean[c]) * invstd[c] * gamma[c] + beta[c])
// bitwise what batch_norm_apply (kernels/batchnorm.h) would have written with fuse_relu; the
// padding stays 0. The normalised input never exists in memory: im2col, the shifted GEMMs' padded
// copy, or (1x1) a tile of columns in the thread's cache-sized buffer normalise as they copy. This
// is how the memory-efficient dense block runs its BN-ReLU-conv pairs on the CPU.
struct InputNormalization {
  const float* mean = nullptr;
  const float* invstd = nullptr;
  const float* gamma = nullptr;
  const float* beta = nullptr;
};

// y = conv(x, weight) + bias; bias may be null. Overwrites y. x and y are batch-strided.
// workspace: conv2d_workspace_bytes(geometry) bytes (null when 0).
struct Conv2dForwardArgs {
  Conv2dGeometry geometry;
  StridedIn x;
  const float* weight = nullptr;
  const float* bias = nullptr;
  StridedOut y;
  void* workspace = nullptr;
};

// dx = gradient of the input. Overwrites dx. workspace: conv2d_backward_workspace_bytes(geometry).
struct Conv2dBackwardDataArgs {
  Conv2dGeometry geometry;
  StridedIn dy;
  const float* weight = nullptr;
  StridedOut dx;
  void* workspace = nullptr;
};

// dweight and dbias = gradients of the parameters, summed over the batch; either may be null when
// not wanted. Overwrites them. workspace: conv2d_backward_workspace_bytes(geometry).
struct Conv2dBackwardWeightArgs {
  Conv2dGeometry geometry;
  StridedIn x;
  StridedIn dy;
  float* dweight = nullptr;
  float* dbias = nullptr;
  void* workspace = nullptr;
};

// y = conv(x', weight) + bias with x' = the normalised x (norm). Overwrites y.
// workspace: conv2d_normalized_workspace_bytes(geometry).
struct Conv2dForwardNormalizedArgs {
  Conv2dGeometry geometry;
  StridedIn x;
  InputNormalization norm;
  const float* weight = nullptr;
  const float* bias = nullptr;
  StridedOut y;
  void* workspace = nullptr;
};

// The input gradient of a 1x1 convolution that read x normalised, carried on through that BN +
// ReLU (see conv2d_backward_data_normalized). dx may be null (only the sums wanted).
// workspace: conv2d_normalized_backward_workspace_bytes(geometry).
struct Conv2dBackwardDataNormalizedArgs {
  Conv2dGeometry geometry;
  StridedIn dy;
  const float* weight = nullptr;
  StridedIn x;
  InputNormalization norm;
  StridedOut dx;                     // added into
  double* sum_dy = nullptr;          // [in_channels], overwritten
  double* sum_dy_centered = nullptr; // [in_channels], overwritten
  void* workspace = nullptr;
};

// The weight gradient of a convolution that read x normalised. Overwrites dweight and dbias
// (either may be null). workspace: conv2d_normalized_backward_workspace_bytes(geometry).
struct Conv2dBackwardWeightNormalizedArgs {
  Conv2dGeometry geometry;
  StridedIn x;
  InputNormalization norm;
  StridedIn dy;
  float* dweight = nullptr;
  float* dbias = nullptr;
  void* workspace = nullptr;
};

// y = conv(x', weight) + bias in bf16: x' (x normalised by *norm when norm is set, else x) and the
// weight rounded to bf16 (nearest even), products accumulated in fp32; bias may be null. Overwrites y.
// It keeps nothing: the backward kernels round their fp32 operands again. x and y are NCHW images, or
// channels-last ([N, H, W, C], each image dense) where the flags say so: the dense block keeps its
// bottleneck channels-last between conv1 and conv2, where bf16's convolutions want it, so that
// neither transposes it. workspace: conv2d_bf16_workspace_bytes(geometry, layout).
struct Bf16Layout {
  bool x_channels_last = false;
  bool y_channels_last = false;
  int64_t y_batch_stride = 0;  // the y.batch_stride the call will pass (it shapes oneDNN's primitive)
  bool operator==(const Bf16Layout&) const = default;
};
struct Conv2dForwardBf16Args {
  Conv2dGeometry geometry;
  Bf16Layout layout;
  StridedIn x;
  const InputNormalization* norm = nullptr;
  const float* weight = nullptr;
  const float* bias = nullptr;
  StridedOut y;
  void* workspace = nullptr;
};

}  // namespace chex::kernels

// The kernels of this family that both backends provide (engine/src/backend/backend.h; the
// argument structs above say what each computes). On CUDA they are cuDNN's
// (engine/src/cuda/conv_cuda.cpp), declared from this same list in engine/src/cuda/library_kernels.h
// (CHEX_DECLARE_KERNEL: the same signatures); cuDNN sizes and takes its workspace itself, so its
// workspace kernels return 0. The CPU's workspace sizes depend on the thread count, so query them
// on the thread that then calls the kernel, outside a parallel region.
#define CHEX_CONV2D_KERNELS(X)                                                  \
  X(size_t, conv2d_workspace_bytes, const Conv2dGeometry& g)                    \
  X(size_t, conv2d_backward_workspace_bytes, const Conv2dGeometry& g)           \
  X(void, conv2d_forward, const Conv2dForwardArgs& a)                           \
  X(void, conv2d_backward_data, const Conv2dBackwardDataArgs& a)                \
  X(void, conv2d_backward_weight, const Conv2dBackwardWeightArgs& a)

// The convolutions that apply BN + ReLU to their input as they read it (InputNormalization):
// optional, a backend may leave them null (the CUDA one does); ask Backend::has() before calling
// one. Declared only in namespace cpu. Their workspace kernels (in bytes) cover the normalized
// forms and the plain ones of the same geometry.
//   conv2d_forward_normalized: y = conv(x', weight) + bias with x' the normalised input.
//   conv2d_backward_data_normalized: the input gradient of a 1x1 convolution that read its input
//     normalised (conv2d_forward_normalized), carried on through that BN + ReLU, tile by tile of
//     columns so that the GEMM's tile of weight^T dy is used from cache. Per input channel c, with
//     dy' = (weight^T dy)[c] masked by the ReLU:
//       dx[c] += invstd[c] gamma[c] dy'   (added in; dx may be null when only the sums are wanted)
//       sum_dy[c] = sum of dy',  sum_dy_centered[c] = sum of dy' (x[c] - mean[c])   (over the batch)
//     With batch statistics the BN's gradient has a further term, affine in x (see
//     batch_norm_backward_statistics_term), which is the caller's to add. Overwrites the sums.
//   conv2d_backward_weight_normalized: the weight gradient of a convolution that read its input
//     normalised: x' is recomputed from x as it is read, with the same statistics.
//   conv2d_forward_bf16: the forward in bf16 with fp32 accumulation (Conv2dForwardBf16Args), at
//     --precision bf16; worth calling on a CPU where cpu_has_native_bf16().
//   conv2d_backward_data_bf16, conv2d_backward_weight_bf16: the two backward passes of a plain
//     convolution (the fp32 kernels' argument structs, NCHW batch-strided images) with bf16
//     operands: dy, the weight and x rounded to bf16 (nearest even), products accumulated in fp32,
//     results written in fp32 (dbias: the fp32 sum of dy as given). Mixed-precision training at
//     --precision bf16: the parameters and their gradients stay fp32 outside these kernels.
//     workspace: conv2d_bf16_backward_workspace_bytes(geometry), covering both.
// On CUDA (cuDNN's bf16 convolutions, which write bf16), y, dx and dweight are moreover rounded
// to bf16 once before they are widened into the fp32 result: a relative difference up to 2^-8
// from the CPU's, which writes fp32 accumulations straight out.
// CHEX_CONV2D_BF16_KERNELS: the bf16 ones, which the CUDA table has too (CHEX_CUDA_OPTIONAL_KERNELS;
// NCHW only there, norm == nullptr).
#define CHEX_CONV2D_BF16_KERNELS(X)                                                            \
  X(size_t, conv2d_bf16_workspace_bytes, const Conv2dGeometry& g, const Bf16Layout& layout)    \
  X(void, conv2d_forward_bf16, const Conv2dForwardBf16Args& a)                                 \
  X(size_t, conv2d_bf16_backward_workspace_bytes, const Conv2dGeometry& g)                     \
  X(void, conv2d_backward_data_bf16, const Conv2dBackwardDataArgs& a)                          \
  X(void, conv2d_backward_weight_bf16, const Conv2dBackwardWeightArgs& a)
#define CHEX_CONV2D_OPTIONAL_KERNELS(X)                                                        \
  X(size_t, conv2d_normalized_workspace_bytes, const Conv2dGeometry& g)                        \
  X(size_t, conv2d_normalized_backward_workspace_bytes, const Conv2dGeometry& g)               \
  X(void, conv2d_forward_normalized, const Conv2dForwardNormalizedArgs& a)                     \
  X(void, conv2d_backward_data_normalized, const Conv2dBackwardDataNormalizedArgs& a)          \
  X(void, conv2d_backward_weight_normalized, const Conv2dBackwardWeightNormalizedArgs& a)      \
  CHEX_CONV2D_BF16_KERNELS(X)

namespace chex::kernels::cpu {

CHEX_CONV2D_KERNELS(CHEX_DECLARE_KERNEL)
CHEX_CONV2D_OPTIONAL_KERNELS(CHEX_DECLARE_KERNEL)

// Floats of workspace that conv2d_forward needs (an im2col matrix per thread that takes samples), and
// that the two backward functions need; 0 where `workspace` may be null (the *_bytes kernels in
// bytes). Both depend on the thread count, so query them on the thread that then calls the kernel,
// outside a parallel region.
int64_t conv2d_workspace_size(const Conv2dGeometry& g);
int64_t conv2d_backward_workspace_size(const Conv2dGeometry& g);
// The same for the forms that normalise their input (a 1x1 then needs a tile of columns per
// thread); the backward size covers conv2d_backward_data and conv2d_backward_data_normalized too.
int64_t conv2d_normalized_workspace_size(const Conv2dGeometry& g);
int64_t conv2d_normalized_backward_workspace_size(const Conv2dGeometry& g);

// Whether this CPU computes bf16 products natively (AVX512_BF16 or AMX, as oneDNN sees it): the
// bf16 convolutions run anywhere oneDNN does, but are only faster than fp32 where this holds.
// False in a build without oneDNN (CHEX_GEMM=openblas), whose bf16 kernels are the slower
// reference ones below.
bool cpu_has_native_bf16();
// The bf16 convolutions by their definition (kernels/conv2d_bf16_reference_cpu.cpp): the operands
// (the input normalised first, where asked) rounded to bf16 into NCHW fp32 copies, multiplied by the
// fp32 kernels. The oracle the oneDNN kernels are tested against, and the bf16 kernels of a build
// without oneDNN; the same arguments, workspace: conv2d_bf16_reference_workspace_bytes and
// conv2d_bf16_backward_reference_workspace_bytes.
size_t conv2d_bf16_reference_workspace_bytes(const Queue& q, const Conv2dGeometry& g, const Bf16Layout& layout);
void conv2d_forward_bf16_reference(const Queue& q, const Conv2dForwardBf16Args& a);
size_t conv2d_bf16_backward_reference_workspace_bytes(const Queue& q, const Conv2dGeometry& g);
void conv2d_backward_data_bf16_reference(const Queue& q, const Conv2dBackwardDataArgs& a);
void conv2d_backward_weight_bf16_reference(const Queue& q, const Conv2dBackwardWeightArgs& a);
// bf16 rounding (kernels/bfloat16.h: to nearest even; NaN becomes the quiet NaN 0x7fff) and back, as
// the bf16 kernels round.
uint16_t float_to_bf16(float value);
float bf16_to_float(uint16_t value);

}  // namespace chex::kernels::cpu
