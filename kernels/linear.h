#pragma once
// Fully connected layer: x [batch, in], weight [out, in], bias [out] -> y [batch, out]. All arrays
// contiguous. The CPU twins run the GEMM (kernels/gemm.h); on CUDA cuBLAS
// (engine/src/cuda/linear_cuda.cpp) with the same signatures.
#include <cstdint>

#include "kernels/queue.h"

// The kernels of this family that both backends provide (engine/src/backend/backend.h).
#define CHEX_LINEAR_KERNELS(X) \
  X(linear_forward)            \
  X(linear_backward_data)      \
  X(linear_backward_weight)

namespace chex::kernels {

struct LinearShape {
  int64_t batch = 0;
  int64_t in = 0;
  int64_t out = 0;
};

// y = x * weight^T + bias; bias may be null. Overwrites y.
struct LinearForwardArgs {
  LinearShape shape;
  const float* x = nullptr;
  const float* weight = nullptr;
  const float* bias = nullptr;
  float* y = nullptr;
};

// dx = dy * weight. Overwrites dx.
struct LinearBackwardDataArgs {
  LinearShape shape;
  const float* dy = nullptr;
  const float* weight = nullptr;
  float* dx = nullptr;
};

// dweight = dy^T * x and dbias = column sums of dy; either may be null when not wanted.
// Overwrites them.
struct LinearBackwardWeightArgs {
  LinearShape shape;
  const float* x = nullptr;
  const float* dy = nullptr;
  float* dweight = nullptr;
  float* dbias = nullptr;
};

}  // namespace chex::kernels

namespace chex::kernels::cpu {

void linear_forward(const Queue& q, const LinearForwardArgs& a);
void linear_backward_data(const Queue& q, const LinearBackwardDataArgs& a);
void linear_backward_weight(const Queue& q, const LinearBackwardWeightArgs& a);

}  // namespace chex::kernels::cpu
