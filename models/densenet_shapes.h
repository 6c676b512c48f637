#pragma once
// The distinct layer shapes a DenseNet (models/densenet.h) runs for a batch of square images, in
// the order the model first meets them: what the kernel tests and benchmarks iterate over, taken
// from the model's definition so that they follow its configuration and structure (the
// transitions pool before their convolution, see Transition::forward).
#include <cstdint>
#include <map>
#include <tuple>
#include <vector>

#include "chex/kernel_calls.h"
#include "models/densenet.h"

namespace chex::models {

struct ConvShape {
  int64_t batch, in_channels, height, width, out_channels, kernel, stride, padding;
  auto key() const { return std::tie(batch, in_channels, height, width, out_channels, kernel, stride, padding); }
  bool operator<(const ConvShape& o) const { return key() < o.key(); }
};

// A feature map [batch, channels, height, width] seen by batch norm / ReLU / pooling.
struct MapShape {
  int64_t batch, channels, height, width;
  auto key() const { return std::tie(batch, channels, height, width); }
  bool operator<(const MapShape& o) const { return key() < o.key(); }
};

struct DenseNetShapes {
  std::vector<ConvShape> convolutions;  // distinct, in network order of first appearance
  std::vector<MapShape> batch_norms;    // inputs of every BN (norm0, norm1/norm2 of each layer, transitions, norm5)
  MapShape stem_pool_input{};           // max pool 3x3/2 pad 1
  std::vector<MapShape> transition_pool_inputs;  // avg pool 2x2/2
  MapShape global_pool_input{};         // after norm5
};

DenseNetShapes densenet_layer_shapes(int64_t batch, int64_t size = 224,
                                     const DenseNetConfig& config = DenseNetConfig::densenet121());

// How many times one pass of a DenseNet runs each kernel at each shape (KernelCall's shapes,
// chex/kernel_calls.h), for the kernels bench_kernels measures and their neighbours: batch norm
// (forward training / inference, apply, backward, and the moments kept for norm1: moments,
// statistics from moments), max, average and global pooling (forward, backward), sigmoid + BCE,
// and the channel copies (copy_channels, add_channels). The pass is the one the CUDA backend runs:
// memory-efficient dense blocks on a backend without the fused normalising convolutions but with
// the batch-norm moments (norm1's computed once per channel), every BN fused with its ReLU (so no
// standalone ReLU and no concatenation). A training step is forward (batch statistics), weighted BCE, backward; an
// inference pass is the forward in eval mode without gradients. Checked against the kernels a
// real step calls by tests/test_densenet_kernel_calls.cpp.
enum class DenseNetPass { training_step, inference };
std::map<KernelCall, int64_t> densenet_kernel_calls(DenseNetPass pass, int64_t batch, int64_t size = 224,
                                                   const DenseNetConfig& config = DenseNetConfig::densenet121());

}  // namespace chex::models
