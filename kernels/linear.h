#pragma once
// Fully connected layer on the CPU, through the GEMM: x [batch, in], weight [out, in],
// bias [out] -> y [batch, out]. All arrays contiguous.
#include <cstdint>

namespace chex::kernels::cpu {

// y = x * weight^T + bias; bias may be null. Overwrites y.
void linear_forward(const float* x, const float* weight, const float* bias, float* y, int64_t batch, int64_t in,
                    int64_t out);
// dx = dy * weight. Overwrites dx.
void linear_backward_data(const float* dy, const float* weight, float* dx, int64_t batch, int64_t in, int64_t out);
// dweight = dy^T * x and dbias = column sums of dy; either may be null when not wanted.
// Overwrites them.
void linear_backward_weight(const float* x, const float* dy, float* dweight, float* dbias, int64_t batch, int64_t in,
                            int64_t out);

}  // namespace chex::kernels::cpu
