#pragma once
// What the memory-efficient dense block's forward (dense_block.cpp) and backward
// (dense_block_backward.cpp) share: the block's shapes, the saved tensors and the choice of path.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "chex/dense_block.h"
#include "chex/tensor.h"
#include "kernels/conv2d.h"

namespace chex::ops::dense_block {

inline constexpr const char* kOp = "memory_efficient_dense_block";

// The shapes of one block.
struct BlockGeometry {
  int64_t batch = 0, in_channels = 0, height = 0, width = 0;
  int64_t layers = 0, growth = 0, bottleneck = 0;

  int64_t spatial() const { return height * width; }
  int64_t layer_in_channels(int64_t l) const { return in_channels + l * growth; }
  int64_t out_channels() const { return in_channels + layers * growth; }
  // Batch strides: of the block buffer (also of its gradient), and of a bottleneck-wide tensor.
  int64_t image() const { return out_channels() * spatial(); }
  int64_t bottleneck_image() const { return bottleneck * spatial(); }
  // The shared scratch holds one layer's BN+ReLU output (at most C_final channels) or its
  // gradient; sized by C_final rather than C_final - growth to keep its size a function of the
  // block buffer's.
  int64_t scratch_size() const { return batch * std::max(out_channels(), bottleneck) * spatial(); }

  kernels::Conv2dGeometry conv1(int64_t l) const {
    return kernels::Conv2dGeometry::make(batch, layer_in_channels(l), height, width, bottleneck, 1, 1, 1, 0);
  }
  kernels::Conv2dGeometry conv2() const {
    return kernels::Conv2dGeometry::make(batch, bottleneck, height, width, growth, 3, 3, 1, 1);
  }
};

// The op's inputs, in the order the gradients are returned: x, then six tensors per layer.
inline constexpr size_t kTensorsPerLayer = 6;
enum LayerInput : size_t { kNorm1Weight, kNorm1Bias, kConv1Weight, kNorm2Weight, kNorm2Bias, kConv2Weight };
inline size_t input_index(int64_t layer, LayerInput which) {
  return 1 + static_cast<size_t>(layer) * kTensorsPerLayer + which;
}

// One layer's batch statistics, [2 * C_l + 2 * bottleneck] floats: the (mean, 1/std) that norm1
// and norm2 normalised with.
struct LayerStatistics {
  float* mean1 = nullptr;
  float* invstd1 = nullptr;
  float* mean2 = nullptr;
  float* invstd2 = nullptr;
  LayerStatistics() = default;  // none kept (no backward follows)
  LayerStatistics(const Tensor& storage, int64_t in_channels, int64_t bottleneck)
      : mean1(storage.data()),
        invstd1(mean1 + in_channels),
        mean2(invstd1 + in_channels),
        invstd2(mean2 + bottleneck) {}
};

// Everything the backward reads (all detached: the closure must not hold graph history).
struct SavedBlock {
  BlockGeometry geometry;
  bool batch_statistics = true;
  bool bf16 = false;                   // the convolutions in bf16 (then the unfused backward)
  Tensor features;                     // the block buffer: the op's output
  Tensor bottlenecks;                  // [L, N, bottleneck, H, W]: each layer's conv1 output
  std::vector<Tensor> statistics;      // per layer, see LayerStatistics
  std::vector<DenseLayerTensors> layers;
};

std::vector<Tensor> backward(const SavedBlock& s, const Tensor& grad_output, const std::vector<bool>& needs);

// The fused path, where the backend has the optional kernels it needs (the CPU's): the layers'
// BN+ReLU never write their output, the convolution that reads it applies them as it reads its
// input (kernels/conv2d.h, InputNormalization), from cache. And every layer's norm1 reads the same
// channels of the block buffer, whose batch mean and variance are therefore the same for all
// layers (only gamma and beta differ): they are computed once, when a channel is written, instead
// of by every later layer (which was quadratic in depth). Results are those of the unfused
// kernels: the same moments, the same normalised values. In the backward, conv1's input gradient
// goes through norm1 + relu1 tile by tile, from cache, and into the block's gradient
// (conv2d_backward_data_normalized), so that it is never written out either; the batch
// statistics' term of norm1's gradient is summed over the layers and added once per channel.
// Otherwise (CUDA) each BN+ReLU is written into a scratch buffer that a plain convolution reads;
// norm1's moments are still computed once per channel where the backend has the batch-norm
// moments kernels (CUDA's does), norm1 then only normalising the prefix (batch_norm_apply).
inline bool fuses_normalization(const backend::Backend& be) {
  return be.has(&backend::KernelTable::conv2d_forward_normalized);
}

inline kernels::InputNormalization input_normalization(const BatchNormTensors& bn, const float* mean,
                                                       const float* invstd) {
  return {mean, invstd, bn.weight.data(), bn.bias.data()};
}

// A workspace of `bytes` as a float tensor's size.
inline int64_t floats_for(size_t bytes) { return static_cast<int64_t>((bytes + sizeof(float) - 1) / sizeof(float)); }

inline Tensor empty_if(bool wanted, const Shape& shape, Device device) {
  return wanted ? Tensor::empty(shape, device) : Tensor();
}

}  // namespace chex::ops::dense_block
