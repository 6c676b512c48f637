#pragma once
// 3x3, stride-1, padding-1 convolutions on the CPU by Winograd's minimal filtering F(2x2, 3x3)
// (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016): each 2x2 block of
// outputs ("tile") comes from a 4x4 block of the padded input d as
//   y = A^T [ (G g G^T) (.) (B^T d B) ] A          (.) elementwise over the 16 positions xi
// so that, per xi, the channel sums are one GEMM, M_xi [C_out, T] = U_xi [C_out, C_in] V_xi [C_in, T]
// over the T tiles of an image: 16 multiplications per tile and channel pair where the direct
// convolution does 36 (2.25x fewer). The transforms only add, subtract and halve, so the results
// differ from the direct sum by float rounding alone. DenseNet's 3x3 convolutions (128 -> 32 and,
// for the input gradient, 32 -> 128) are 44% of its multiply-adds.
//
// The weight gradient is the same algebra transposed: dU_xi = sum over tiles of (A dy A^T)_xi times
// V_xi, one GEMM per xi with K = T, then dg = G^T dU G. Internal to conv2d_cpu.cpp, which decides
// where it applies and runs the samples on threads.
#include <cstdint>

#include "conv2d.h"

namespace chex::kernels::cpu::winograd {

// 3x3 kernel, stride 1, padding 1 (output size = input size), from 16 x 16 up (below that the
// transforms run scalar: see the .cpp).
bool applies(const Conv2dGeometry& g);

// Floats of the transformed kernel U [16, C_out, C_in], shared by the threads.
int64_t kernel_size(const Conv2dGeometry& g);
void transform_kernel(const Conv2dGeometry& g, const float* weight, float* u);

// Floats of one thread's buffers for forward_sample: V, M and the transforms' scratch.
int64_t forward_slot_size(const Conv2dGeometry& g);
// One image's output [C_out, H, W] (overwritten) from its input x' (normalised when `norm` is set).
void forward_sample(const Conv2dGeometry& g, const float* u, const float* image, const InputNormalization* norm,
                    float* out, float* slot);

// Floats of one thread's buffers for weight_gradient_sample; the first kernel_size(g) of them are
// the thread's running sum of dU (stored [16, C_in, C_out]).
int64_t weight_gradient_slot_size(const Conv2dGeometry& g);
// Adds one image's dU into the slot's sum (overwrites it when `first`).
void weight_gradient_sample(const Conv2dGeometry& g, const float* image, const InputNormalization* norm,
                            const float* dy, bool first, float* slot);
// dweight [C_out, C_in, 3, 3] = G^T (sum of the `slots` threads' dU, in thread order) G.
void weight_gradient_finish(const Conv2dGeometry& g, const float* workspace, int slots, float* dweight);

}  // namespace chex::kernels::cpu::winograd
