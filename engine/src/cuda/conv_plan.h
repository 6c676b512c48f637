#pragma once
// Everything one pass of one convolution problem needs from cuDNN, made once per problem and
// cached for the life of the process: the descriptors (the convolution's math type set to the
// chosen algorithm's), the algorithm (conv_algorithm.h says how it is chosen) and its workspace
// size. A call looks its plan up by a POD key in a per-device hash map under a shared lock and
// builds nothing. CHEX_LOG=conv prints each choice once, to stderr, as it is made.
#include <cudnn.h>

#include "conv_algorithm.h"
#include "cudnn_descriptors.h"
#include "cudnn_legacy.h"
#include "device_context.h"

CHEX_CUDNN_LEGACY_API_BEGIN
namespace chex::cuda {

struct ConvPlan {
  TensorDescriptor x, y;  // input and output (or their gradients), batch-strided, of the key's dtype
  FilterDescriptor w;     // of the key's dtype
  ConvolutionDescriptor conv;
  TensorDescriptor bias;  // [1, C_out, 1, 1], float (bf16 convolutions add their bias in fp32)
  ConvChoice choice;

  explicit ConvPlan(const ConvKey& key);
  template <typename Algo>
  Algo algo() const {
    return static_cast<Algo>(choice.algo);
  }
};

// The device memory of the call a plan is made for: a timed search (--deterministic off) runs the
// candidates on it. One of them is the pass's output (y forward, x backward data, w backward
// filter), which the search overwrites before the call itself writes it.
struct ConvBuffers {
  const void* x = nullptr;
  const void* w = nullptr;
  const void* y = nullptr;
};

// The plan for `key` (its device, pass and modes included), made on first use.
const ConvPlan& conv_plan(const DeviceContext& ctx, const ConvKey& key, const ConvBuffers& buffers);

// The plan of one pass over x and y (or dx and dy) of these batch strides and this data type,
// under the process's current TF32 and determinism settings.
const ConvPlan& current_conv_plan(const DeviceContext& ctx, ConvPass pass, const kernels::Conv2dGeometry& g,
                                  int64_t x_batch_stride, int64_t y_batch_stride, const ConvBuffers& buffers,
                                  cudnnDataType_t data_type = CUDNN_DATA_FLOAT);

}  // namespace chex::cuda
CHEX_CUDNN_LEGACY_API_END
