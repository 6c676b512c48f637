#pragma once
// A whole DenseNet dense block as one fused autograd op with its own backward (as cuDNN's fused
// ops), memory-efficient after Pleiss et al. (2017): see ../shared/DESIGN.md, "Memory-efficient
// dense blocks", and the comment at the top of engine/src/ops/dense_block.cpp for what is saved and
// what is recomputed.
//
// Each layer l (0-based) of a block with C0 input channels reads the first C_l = C0 + l*growth
// channels of the block buffer and computes
//   new = conv2(relu2(norm2(conv1(relu1(norm1(prefix))))))      conv1 1x1 -> bottleneck, conv2 3x3
// which it writes into channels [C_l, C_l + growth) of the same buffer: torchvision's _DenseLayer
// and its concatenation, without the concatenation.
#include <vector>

#include "chex/tensor.h"

namespace chex::ops {

// A batch normalisation's tensors: the parameters (weight, bias) and the running statistics, which
// a training-mode forward updates in place, once.
struct BatchNormTensors {
  Tensor weight, bias, running_mean, running_var;
  float eps = 1e-5f;
  float momentum = 0.1f;
};

// One dense layer's tensors (torchvision's names in the comments).
struct DenseLayerTensors {
  BatchNormTensors norm1;  // [C_l]
  Tensor conv1_weight;     // [bottleneck, C_l, 1, 1]
  BatchNormTensors norm2;  // [bottleneck]
  Tensor conv2_weight;     // [growth, bottleneck, 3, 3]
};

// x [N, C0, H, W] -> [N, C0 + L*growth, H, W]: x followed by every layer's new channels. With
// `training`, batch normalisation uses the batch statistics and updates the running ones (exactly
// once per call, also in backward); otherwise it uses the running statistics.
//
// Gradients flow to x and to every layer's norm1.weight, norm1.bias, conv1_weight, norm2.weight,
// norm2.bias and conv2_weight: the op's inputs are, in this order, x then those six per layer.
// The counters num_batches_tracked belong to the modules and are not touched here.
Tensor memory_efficient_dense_block(const Tensor& x, const std::vector<DenseLayerTensors>& layers, bool training);

}  // namespace chex::ops
