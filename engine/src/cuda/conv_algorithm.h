#pragma once
// cuDNN convolution algorithms: picked once per problem (shapes, strides, padding, stride, device)
// and cached for the life of the process.
//
// The choice comes from cuDNN's heuristics (cudnnGet*Algorithm_v7), not from timing runs
// (cudnnFind*): the heuristics answer the same on every run with the same GPU and cuDNN version,
// so a training run is reproducible, while timed choices may differ from run to run. Among the
// ranked candidates the first is taken that cuDNN reports as supported, DETERMINISTIC (no atomics
// in the backward passes: CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 and BWD_FILTER_ALGO_0/3 are never
// used), in plain FMA math unless TF32 is allowed, and needing at most kMaxWorkspaceBytes.
// When none qualifies: IMPLICIT_GEMM forward, BWD_DATA_ALGO_1, BWD_FILTER_ALGO_1 (deterministic,
// little workspace).
#include <cudnn.h>

#include <cstddef>
#include <string>

#include "cudnn_descriptors.h"
#include "cudnn_legacy.h"

// Legacy-API types throughout.
CHEX_CUDNN_LEGACY_API_BEGIN
namespace chex::cuda {

constexpr size_t kMaxWorkspaceBytes = size_t{1} << 30;

struct ConvAlgorithm {
  int algo = 0;          // cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t
  size_t workspace = 0;  // bytes
  cudnnMathType_t math = CUDNN_FMA_MATH;
};

// One convolution problem as cuDNN sees it.
struct ConvProblem {
  const TensorDescriptor& x;       // input (or its gradient)
  const FilterDescriptor& w;       // weight (or its gradient)
  ConvolutionDescriptor& conv;     // its math type is set to the chosen algorithm's
  const TensorDescriptor& y;       // output (or its gradient)
};

enum class ConvPass { forward, backward_data, backward_filter };

// `key` identifies the problem (shapes, strides, padding, stride, device) in the cache.
ConvAlgorithm conv_algorithm(cudnnHandle_t handle, ConvPass pass, const std::string& key, ConvProblem problem);

}  // namespace chex::cuda
CHEX_CUDNN_LEGACY_API_END
