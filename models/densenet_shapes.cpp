#include "models/densenet_shapes.h"

#include <set>

namespace chex::models {

// Walks the structure DenseNet's constructor builds (densenet.cpp, dense_block.cpp).
DenseNetShapes densenet_layer_shapes(int64_t batch, int64_t size, const DenseNetConfig& config) {
  const int64_t growth = config.growth_rate, bottleneck = config.bn_size * growth;
  DenseNetShapes s;
  std::set<ConvShape> seen_conv;
  std::set<MapShape> seen_map;
  auto conv = [&](ConvShape c) {
    if (seen_conv.insert(c).second) s.convolutions.push_back(c);
  };
  auto bn = [&](MapShape m) {
    if (seen_map.insert(m).second) s.batch_norms.push_back(m);
  };
  int64_t channels = config.num_init_features;
  int64_t hw = (size + 2 * 3 - 7) / 2 + 1;  // conv0: 7x7/2 pad 3
  conv({batch, 3, size, size, channels, 7, 2, 3});
  bn({batch, channels, hw, hw});
  s.stem_pool_input = {batch, channels, hw, hw};
  hw = (hw + 2 - 3) / 2 + 1;  // pool0: 3x3/2 pad 1
  const size_t blocks = config.block_config.size();
  for (size_t b = 0; b < blocks; ++b) {
    for (int64_t layer = 0; layer < config.block_config[b]; ++layer) {
      const int64_t in = channels + layer * growth;
      bn({batch, in, hw, hw});
      conv({batch, in, hw, hw, bottleneck, 1, 1, 0});
      bn({batch, bottleneck, hw, hw});
      conv({batch, bottleneck, hw, hw, growth, 3, 1, 1});
    }
    channels += config.block_config[b] * growth;
    if (b + 1 < blocks) {  // transition: norm, relu, 2x2/2 average pool, then the 1x1 convolution
      bn({batch, channels, hw, hw});
      s.transition_pool_inputs.push_back({batch, channels, hw, hw});
      hw /= 2;
      conv({batch, channels, hw, hw, channels / 2, 1, 1, 0});
      channels /= 2;
    }
  }
  bn({batch, channels, hw, hw});
  s.global_pool_input = {batch, channels, hw, hw};
  return s;
}

}  // namespace chex::models

namespace chex::models {

// Walks DenseNet::forward_with_features (densenet.cpp), the memory-efficient block's unfused path
// (engine/src/ops/dense_block.cpp, dense_block_backward.cpp) and the ops' backwards.
std::map<KernelCall, int64_t> densenet_kernel_calls(DenseNetPass pass, int64_t batch, int64_t size,
                                                   const DenseNetConfig& config) {
  const bool training = pass == DenseNetPass::training_step;
  std::map<KernelCall, int64_t> calls;
  auto add = [&](const char* kernel, std::vector<int64_t> shape, int64_t times = 1) {
    calls[{kernel, std::move(shape)}] += times;
  };
  const int64_t growth = config.growth_rate, bottleneck = config.bn_size * growth;
  // A BN + ReLU of the model (not of a dense layer): its forward, and in training its backward.
  auto batch_norm = [&](int64_t channels, int64_t spatial) {
    add(training ? "batch_norm_forward_training" : "batch_norm_forward_inference", {batch, channels, spatial});
    if (training) add("batch_norm_backward", {batch, channels, spatial});
  };

  int64_t channels = config.num_init_features;
  int64_t hw = (size + 2 * 3 - 7) / 2 + 1;  // conv0
  batch_norm(channels, hw * hw);            // norm0
  add("max_pool2d_forward", {batch, channels, hw, hw});
  if (training) add("max_pool2d_backward", {batch, channels, hw, hw});
  hw = (hw + 2 - 3) / 2 + 1;
  const size_t blocks = config.block_config.size();
  for (size_t b = 0; b < blocks; ++b) {
    const int64_t layers = config.block_config[b], spatial = hw * hw, out = channels + layers * growth;
    // Forward: x copied into the block buffer; per layer norm1 over the prefix, norm2 over the
    // bottleneck. In training norm1's moments are kept per channel (x's once, then each layer's
    // new channels but the last's), so norm1 is its statistics from them and an apply; norm2 is a
    // full BN.
    add("copy_channels", {batch, channels, spatial, channels, out});
    if (training) add("batch_norm_moments", {batch, channels, spatial});
    for (int64_t l = 0; l < layers; ++l) {
      const int64_t prefix = channels + l * growth;
      if (training) {
        add("batch_norm_statistics_from_moments", {prefix, batch * spatial});
        add("batch_norm_apply", {batch, prefix, spatial});
      } else {
        add("batch_norm_forward_inference", {batch, prefix, spatial});
      }
      add(training ? "batch_norm_forward_training" : "batch_norm_forward_inference", {batch, bottleneck, spatial});
      if (!training) continue;
      if (l + 1 < layers) add("batch_norm_moments", {batch, growth, spatial});
      // Backward, per layer: relu2(norm2(z)) recomputed for conv2's weight gradient, norm2's
      // backward; relu1(norm1(prefix)) recomputed for conv1's, norm1's backward, its prefix's
      // gradient added into the block's.
      add("batch_norm_apply", {batch, bottleneck, spatial});
      add("batch_norm_backward", {batch, bottleneck, spatial});
      add("batch_norm_apply", {batch, prefix, spatial});
      add("batch_norm_backward", {batch, prefix, spatial});
      add("add_channels", {batch, prefix, spatial, prefix, out});
    }
    // Backward: the output's gradient copied into the block's, the input's copied out of it
    // (every block's input needs one: conv0's weight is below).
    if (training) {
      add("copy_channels", {batch, out, spatial, out, out});
      add("copy_channels", {batch, channels, spatial, out, channels});
    }
    channels = out;
    if (b + 1 < blocks) {  // transition: BN + ReLU, 2x2 average pool, 1x1 convolution
      batch_norm(channels, spatial);
      add("avg_pool2d_forward", {batch, channels, hw, hw});
      if (training) add("avg_pool2d_backward", {batch, channels, hw, hw});
      hw /= 2;
      channels /= 2;
    }
  }
  batch_norm(channels, hw * hw);  // norm5
  add("global_avg_pool_forward", {batch, channels, hw * hw});
  if (training) {
    add("global_avg_pool_backward", {batch, channels, hw * hw});
    add("bce_with_logits", {batch, config.num_classes}, 2);  // the loss, then its gradient
  }
  return calls;
}

}  // namespace chex::models
