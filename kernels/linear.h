#pragma once
// Fully connected layer: x [batch, in], weight [out, in], bias [out] -> y [batch, out]. All arrays
// contiguous. The CPU twins run the GEMM (kernels/gemm.h); on CUDA cuBLAS
// (engine/src/cuda/linear_cuda.cpp) with the same signatures.
#include <cstdint>

#include "kernels/queue.h"

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

// The kernels of this family that both backends provide (engine/src/backend/backend.h; the
// argument structs above say what each computes). Declared from this list here for the CPU and in
// engine/src/cuda/library_kernels.h for cuBLAS (CHEX_DECLARE_KERNEL): the same signatures.
#define CHEX_LINEAR_KERNELS(X)                                            \
  X(void, linear_forward, const LinearForwardArgs& a)                     \
  X(void, linear_backward_data, const LinearBackwardDataArgs& a)          \
  X(void, linear_backward_weight, const LinearBackwardWeightArgs& a)

namespace chex::kernels::cpu { CHEX_LINEAR_KERNELS(CHEX_DECLARE_KERNEL) }
